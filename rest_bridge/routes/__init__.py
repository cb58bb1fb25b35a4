"""Hand-written route families, one blueprint each."""
