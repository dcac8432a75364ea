"""What a run shows: activations, effective receptive fields, and two designs compared."""
