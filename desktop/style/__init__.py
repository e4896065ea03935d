"""Neural style transfer (Gatys et al.): VGG19 features, losses and the optimisation loop.
No Qt."""
