"""Language models: corpora, vocabularies, the model, training, sampling and completion."""
