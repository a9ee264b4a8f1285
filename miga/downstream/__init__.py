"""Downstream models: the model f that reads the denoised image (classifiers, feature extractors,
OCR), behind one interface. "Downstream" is its one word in code, config and docs.

Configs read `_target_: miga.downstream.timm_downstream`; the submodule is imported when the
name is first read (miga.utils.exports), so timm and Tesseract load only when a cell uses them.
"""

from miga.utils.exports import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    globals(),
    {
        "classifier": ["Classifier", "timm_classifier"],
        "demo": ["efficientnet_lite0_from_wheel", "efficientnet_lite1_from_wheel"],
        "features": ["FeatureExtractor", "VGG16Features", "timm_features"],
        "ocr": ["TesseractOCR"],
        "timm_models": ["timm_downstream"],
    },
)
