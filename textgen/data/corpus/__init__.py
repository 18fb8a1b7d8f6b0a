"""Corpus ingestion: uploaded bytes in, validated examples, splits and a report out.

Everything a model sees goes through `read_corpus`, so this module is where bad input is caught and
explained. The rules, and why:

* Content decides, never the file name (this module never sees one). An upload called `data.csv`
  may be a TSV, a gzip or a PNG; magic numbers, NUL bytes and the share of control characters are
  checked on the raw bytes before any decoding, so a binary file gets "binary file", not a
  misleading encoding error.
* Decoding is strict. A UTF-8, UTF-16 or UTF-32 byte-order mark is detected and removed (it never
  ends up in the first token or a CSV header); anything else must be valid UTF-8. Undecodable bytes
  are an error with the byte offset, line, column and the byte in hex, never silently replaced:
  a replaced character is a corrupted training example nobody asked for.
* One line rule (`textgen.core.text`): CR LF, CR and LF break lines; U+2028, U+0085 and friends do not.
  Every `Example.line` and `Rejection.line` is the 1-based *physical* line number of that rule, so
  it matches what an editor shows; a bad line never shifts the numbers of later lines.
* Every field is NFC-normalised (`textgen.core.text.normalize`), so composed and decomposed accents are
  the same string for the tokenizer, the model and the metrics. In pair corpora (TSV, CSV, JSONL)
  a field is one line with no tabs: a tab or line break inside a CSV/JSONL value becomes a space,
  so any pair can be written back as one TSV row and shown in one table cell.
* A bad line is rejected (with its line number and a reason that says what to fix) and parsing
  goes on; a file fails as a whole only when it cannot be used at all: too big, empty, binary,
  undecodable, no usable examples, or fewer than `MIN_EXAMPLES` of them.
* Reasons have the shape "category: detail". The category ("missing target", "invalid JSON", ...)
  is what reports count and chart; the detail names the problem on that line. A reason never quotes
  the line itself, so a 1 MB line never ends up in a report or a JSON file.

Formats (detected from the content unless `CorpusConfig.format` says otherwise):

* jsonl: one JSON object per line. Values must be strings; JSON numbers are accepted as their
  literal text (`4` -> "4", `1e3` -> "1e3", never reformatted); null, true/false, lists and objects
  are rejected. Chosen when more than half of the sampled non-empty lines are JSON objects.
* tsv: `source<TAB>target`, fields taken literally (quotes are not special). A first line whose two
  fields are well-known column names ("source<TAB>target", "input<TAB>output"...) is a header and
  skipped. Chosen when more than half of the sampled non-empty lines have a tab after some text
  (leading tabs, as in indented code, do not count).
* csv: RFC 4180 with a header row; "," or ";" as the delimiter (an Excel "sep=;" first line is
  honoured). Quoted fields may span up to `CSV_MAX_RECORD_LINES` physical lines; a quote still open
  after that (or a multi-line record that does not parse) rejects only the line where it opened,
  and parsing resumes on the next line, so one stray quote never swallows the rest of the file.
  Chosen when the first line looks like a header of two or more names and at least 80% of the
  records have as many fields as the header (80%, not a bare majority, because prose has commas).
* text: anything else. Each non-blank line is an example with source "" and target the line as
  written (indentation kept, for poetry and code); blank lines are kept in `Corpus.text`, which is
  the whole normalised document a language model trains on.

Lines longer than `max_line_chars` are rejected in every format, text included (rejected rather
than truncated: a cut line is a sentence that stops mid-word, and the report says which lines to
split). They are also left out of `Corpus.text`.
"""
