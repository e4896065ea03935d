"""Face engine: dlib model reader, detector, landmarks, alignment, encoder, matching,
tracking and training. No Qt."""
