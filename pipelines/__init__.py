"""Thin command-line entry points (generate corpora, train, evaluate); each calls one library function."""
