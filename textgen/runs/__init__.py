"""A finished run as something to take away or bring in: overview, rename, metrics CSV, bundles."""
