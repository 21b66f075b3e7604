"""Backend-neutral artifact machinery: the format registry, build options, the build verb, the parity gate,
metadata and manifests, calibration images, the quantization verb and the runtime interface.

Backends (:mod:`fishopt.backends`) build on this package; nothing here imports a backend except through the
registry's ``"module:attribute"`` references.
"""
