"""``quantization``: weights as 8-, 4- or 2-bit integer codes with one scale per output."""

from autoreg import Choice, Technique, hookimpl
from autoreg.export import quantize


class Quantization(Technique):
    name = "quantization"
    stage = "compression"
    families = ("linear", "mlp")
    order = 90
    description = ("Post-training quantization: each weight matrix becomes signed integer codes "
                   "of bits bits and one float32 scale per output channel (symmetric, "
                   "round to nearest), stored bit-packed. The model predicts with the quantized "
                   "values; weights that round to zero count as zeros.")
    space = {"bits": Choice((8, 4, 2))}

    def compress(self, weights, ctx):
        return [quantize(w, self.bits) for w in weights]


@hookimpl
def register_techniques(register):
    register(Quantization)
