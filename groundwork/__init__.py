"""The ground floor of Threshold: the few small pieces that every package may import.

``gateway``, ``video``, ``ble`` and ``cloud`` need to wait before a retry or to write a
private file whole. ``ble``, ``video`` and ``store`` are the device and storage layers the
gateway builds on, and they do not import it, so these pieces cannot live in ``gateway``; nor
in one of those leaves, which would tie two unrelated leaves together. So they live here, and
this package imports nothing from the project (only the standard library):
:mod:`groundwork.backoff` (pure) and :mod:`groundwork.files`.
"""
