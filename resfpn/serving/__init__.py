"""Running the model for a page or an API: the engine, the packed CPU path, precision, memory limits, images."""
