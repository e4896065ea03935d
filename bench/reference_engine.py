"""The face engine for bench scripts: facestyle's own, or dlib's as the reference.

``load_engine("auto")`` returns ``desktop.face.api.FaceEngine`` when it is importable,
else :class:`DlibEngine`, which implements ``FaceEngineLike`` with ``dlib-bin`` (a test
extra, never used at run time) and the same model files from ``face_recognition_models``:
HOG detector, 5-point landmarks, ``get_face_chip`` (150x150, padding 0.25), ResNet.
"""

from __future__ import annotations

import numpy as np

from desktop.face.types import Face


class DlibEngine:
    """FaceEngineLike over dlib-bin, the reference implementation (bench use only)."""

    model_id = "dlib-reference"

    def __init__(self) -> None:
        import dlib

        from desktop import model_files

        self._dlib = dlib
        self._detector = dlib.get_frontal_face_detector()
        self._shapes = dlib.shape_predictor(str(model_files.require(model_files.FACE_LANDMARKS)))
        self._net = dlib.face_recognition_model_v1(str(model_files.require(
            model_files.FACE_ENCODER)))

    def detect(self, image: np.ndarray) -> list[Face]:
        dlib = self._dlib
        image = np.ascontiguousarray(image)
        rects = self._detector(image, 1)
        faces = []
        for r in rects:
            shape = self._shapes(image, r)
            chip = np.asarray(dlib.get_face_chip(image, shape, size=150, padding=0.25))
            pts = np.array([[p.x, p.y] for p in shape.parts()], np.float32)
            faces.append(Face((r.left(), r.top(), r.width(), r.height()), 1.0, pts, chip))
        return faces

    def embed(self, chips: np.ndarray) -> np.ndarray:
        return np.array([np.array(self._net.compute_face_descriptor(np.ascontiguousarray(c)))
                         for c in chips], np.float32)


def load_engine(kind: str):
    if kind in ("auto", "facestyle"):
        try:
            from desktop.face.api import FaceEngine

            return FaceEngine()
        except ImportError:
            if kind == "facestyle":
                raise
    return DlibEngine()
