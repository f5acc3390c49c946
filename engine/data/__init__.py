"""Training data: what turns protocol files into batches (speed perturbation, ...)."""
