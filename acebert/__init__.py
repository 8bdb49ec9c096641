"""ACE-BERT: a cross-modal two-tower retrieval model and the encoder API used by ingestion and search."""
