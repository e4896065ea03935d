"""What deep ConvNets learn: top-k patches per unit, feature visualisation, conv shapes.

The Explore tab's core, without Qt:

* :mod:`~desktop.explore.receptive_field`: each layer's receptive field and stride in
  input pixels, worked out from the network's own modules (kernel, stride, padding,
  residual branches), and the exact input region each feature-map position depends on;
* :mod:`~desktop.explore.networks`: VGG19 (the Style tab's) and the face encoder f(x) as
  feature extractors with named layers;
* :mod:`~desktop.explore.sources`: the images to look through (a folder, the faces in a
  folder, the gallery's face chips) and their content fingerprint;
* :mod:`~desktop.explore.topk` and :mod:`~desktop.explore.index`: the k strongest
  positions per unit over a whole folder, in one batched pass, cached on disk;
* :mod:`~desktop.explore.patches`: receptive-field crops, 3x3 unit tiles, sheets and
  activation maps;
* :mod:`~desktop.explore.visualize`: a unit's preferred image by gradient ascent;
* :mod:`~desktop.explore.conv_shapes`: the course's output-size formula in 1D, 2D and 3D,
  checked against torch.
"""
