"""Corpora in, batches out: parsing and the validation report, the registry of saved corpora, the
built-in samples, tokenizers and the tf.data pipeline."""
