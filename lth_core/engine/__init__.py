"""The training engine: configs, data, networks, pruning criteria, training and the lottery loop.

It imports nothing from the rest of lth_core, so it can be used alone."""
