"""The test oracle for LPIPS: the `lpips` package's own model with the same offline backbone."""

from __future__ import annotations

import warnings

from torch import nn

from ilo_core.perceptual.weights import load_backbone


def reference_lpips(net: str = "alex") -> nn.Module:
    """The `lpips` package's own model (`lpips.LPIPS`) with the same offline backbone (CPU)."""
    import lpips  # slow: imports torchvision

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torchvision's 'pretrained' deprecation
        model = lpips.LPIPS(net=net, pretrained=True, pnet_rand=True, verbose=False)
    by_index = {}
    for slice_module in model.net.children():
        for name, layer in slice_module.named_children():
            by_index[int(name)] = layer
    load_backbone(by_index, net)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model
