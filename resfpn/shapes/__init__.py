"""The shape-only trace on the meta device and what it derives: records, module map, exact receptive fields."""
