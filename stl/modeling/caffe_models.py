"""Registrations of the Caffe models (caffenet, alexnet, squeezenet, caffenet_random)."""
