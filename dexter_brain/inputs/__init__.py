"""Input builders, one per TRM kind: the single path from a request (or a corpus example) and its
conversation state to candidates, hand-made features and token ids. The corpus build calls them to make
the training tensors and the wrappers call them to serve, so a model sees in service exactly what it saw
in training."""
