"""What every layer uses: errors, text normalisation, atomic files, the config base, CSV/JSON
export, and what the CPU can do. Imports nothing else of textgen."""
