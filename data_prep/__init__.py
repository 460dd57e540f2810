"""Data preparation: corpus, vocabulary and pretraining TFRecords."""
