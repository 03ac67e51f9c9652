"""Tensor shapes of reference models, for benchmarks (no weights, no downloads).

Each list holds ``(name, shape, dtype)`` tuples in state_dict order.
"""

from __future__ import annotations

Shape = tuple[int, ...]
Spec = tuple[str, Shape, str]

#: (name, shape, dtype) of every ResNet-18 state_dict entry, in order.
RESNET18_STATE_DICT: list[Spec] = [
    ("conv1.weight", (64, 3, 7, 7), "float32"),
    ("bn1.weight", (64,), "float32"),
    ("bn1.bias", (64,), "float32"),
    ("bn1.running_mean", (64,), "float32"),
    ("bn1.running_var", (64,), "float32"),
    ("bn1.num_batches_tracked", (), "int64"),
    ("layer1.0.conv1.weight", (64, 64, 3, 3), "float32"),
    ("layer1.0.bn1.weight", (64,), "float32"),
    ("layer1.0.bn1.bias", (64,), "float32"),
    ("layer1.0.bn1.running_mean", (64,), "float32"),
    ("layer1.0.bn1.running_var", (64,), "float32"),
    ("layer1.0.bn1.num_batches_tracked", (), "int64"),
    ("layer1.0.conv2.weight", (64, 64, 3, 3), "float32"),
    ("layer1.0.bn2.weight", (64,), "float32"),
    ("layer1.0.bn2.bias", (64,), "float32"),
    ("layer1.0.bn2.running_mean", (64,), "float32"),
    ("layer1.0.bn2.running_var", (64,), "float32"),
    ("layer1.0.bn2.num_batches_tracked", (), "int64"),
    ("layer1.1.conv1.weight", (64, 64, 3, 3), "float32"),
    ("layer1.1.bn1.weight", (64,), "float32"),
    ("layer1.1.bn1.bias", (64,), "float32"),
    ("layer1.1.bn1.running_mean", (64,), "float32"),
    ("layer1.1.bn1.running_var", (64,), "float32"),
    ("layer1.1.bn1.num_batches_tracked", (), "int64"),
    ("layer1.1.conv2.weight", (64, 64, 3, 3), "float32"),
    ("layer1.1.bn2.weight", (64,), "float32"),
    ("layer1.1.bn2.bias", (64,), "float32"),
    ("layer1.1.bn2.running_mean", (64,), "float32"),
    ("layer1.1.bn2.running_var", (64,), "float32"),
    ("layer1.1.bn2.num_batches_tracked", (), "int64"),
    ("layer2.0.conv1.weight", (128, 64, 3, 3), "float32"),
    ("layer2.0.bn1.weight", (128,), "float32"),
    ("layer2.0.bn1.bias", (128,), "float32"),
    ("layer2.0.bn1.running_mean", (128,), "float32"),
    ("layer2.0.bn1.running_var", (128,), "float32"),
    ("layer2.0.bn1.num_batches_tracked", (), "int64"),
    ("layer2.0.conv2.weight", (128, 128, 3, 3), "float32"),
    ("layer2.0.bn2.weight", (128,), "float32"),
    ("layer2.0.bn2.bias", (128,), "float32"),
    ("layer2.0.bn2.running_mean", (128,), "float32"),
    ("layer2.0.bn2.running_var", (128,), "float32"),
    ("layer2.0.bn2.num_batches_tracked", (), "int64"),
    ("layer2.0.downsample.0.weight", (128, 64, 1, 1), "float32"),
    ("layer2.0.downsample.1.weight", (128,), "float32"),
    ("layer2.0.downsample.1.bias", (128,), "float32"),
    ("layer2.0.downsample.1.running_mean", (128,), "float32"),
    ("layer2.0.downsample.1.running_var", (128,), "float32"),
    ("layer2.0.downsample.1.num_batches_tracked", (), "int64"),
    ("layer2.1.conv1.weight", (128, 128, 3, 3), "float32"),
    ("layer2.1.bn1.weight", (128,), "float32"),
    ("layer2.1.bn1.bias", (128,), "float32"),
    ("layer2.1.bn1.running_mean", (128,), "float32"),
    ("layer2.1.bn1.running_var", (128,), "float32"),
    ("layer2.1.bn1.num_batches_tracked", (), "int64"),
    ("layer2.1.conv2.weight", (128, 128, 3, 3), "float32"),
    ("layer2.1.bn2.weight", (128,), "float32"),
    ("layer2.1.bn2.bias", (128,), "float32"),
    ("layer2.1.bn2.running_mean", (128,), "float32"),
    ("layer2.1.bn2.running_var", (128,), "float32"),
    ("layer2.1.bn2.num_batches_tracked", (), "int64"),
    ("layer3.0.conv1.weight", (256, 128, 3, 3), "float32"),
    ("layer3.0.bn1.weight", (256,), "float32"),
    ("layer3.0.bn1.bias", (256,), "float32"),
    ("layer3.0.bn1.running_mean", (256,), "float32"),
    ("layer3.0.bn1.running_var", (256,), "float32"),
    ("layer3.0.bn1.num_batches_tracked", (), "int64"),
    ("layer3.0.conv2.weight", (256, 256, 3, 3), "float32"),
    ("layer3.0.bn2.weight", (256,), "float32"),
    ("layer3.0.bn2.bias", (256,), "float32"),
    ("layer3.0.bn2.running_mean", (256,), "float32"),
    ("layer3.0.bn2.running_var", (256,), "float32"),
    ("layer3.0.bn2.num_batches_tracked", (), "int64"),
    ("layer3.0.downsample.0.weight", (256, 128, 1, 1), "float32"),
    ("layer3.0.downsample.1.weight", (256,), "float32"),
    ("layer3.0.downsample.1.bias", (256,), "float32"),
    ("layer3.0.downsample.1.running_mean", (256,), "float32"),
    ("layer3.0.downsample.1.running_var", (256,), "float32"),
    ("layer3.0.downsample.1.num_batches_tracked", (), "int64"),
    ("layer3.1.conv1.weight", (256, 256, 3, 3), "float32"),
    ("layer3.1.bn1.weight", (256,), "float32"),
    ("layer3.1.bn1.bias", (256,), "float32"),
    ("layer3.1.bn1.running_mean", (256,), "float32"),
    ("layer3.1.bn1.running_var", (256,), "float32"),
    ("layer3.1.bn1.num_batches_tracked", (), "int64"),
    ("layer3.1.conv2.weight", (256, 256, 3, 3), "float32"),
    ("layer3.1.bn2.weight", (256,), "float32"),
    ("layer3.1.bn2.bias", (256,), "float32"),
    ("layer3.1.bn2.running_mean", (256,), "float32"),
    ("layer3.1.bn2.running_var", (256,), "float32"),
    ("layer3.1.bn2.num_batches_tracked", (), "int64"),
    ("layer4.0.conv1.weight", (512, 256, 3, 3), "float32"),
    ("layer4.0.bn1.weight", (512,), "float32"),
    ("layer4.0.bn1.bias", (512,), "float32"),
    ("layer4.0.bn1.running_mean", (512,), "float32"),
    ("layer4.0.bn1.running_var", (512,), "float32"),
    ("layer4.0.bn1.num_batches_tracked", (), "int64"),
    ("layer4.0.conv2.weight", (512, 512, 3, 3), "float32"),
    ("layer4.0.bn2.weight", (512,), "float32"),
    ("layer4.0.bn2.bias", (512,), "float32"),
    ("layer4.0.bn2.running_mean", (512,), "float32"),
    ("layer4.0.bn2.running_var", (512,), "float32"),
    ("layer4.0.bn2.num_batches_tracked", (), "int64"),
    ("layer4.0.downsample.0.weight", (512, 256, 1, 1), "float32"),
    ("layer4.0.downsample.1.weight", (512,), "float32"),
    ("layer4.0.downsample.1.bias", (512,), "float32"),
    ("layer4.0.downsample.1.running_mean", (512,), "float32"),
    ("layer4.0.downsample.1.running_var", (512,), "float32"),
    ("layer4.0.downsample.1.num_batches_tracked", (), "int64"),
    ("layer4.1.conv1.weight", (512, 512, 3, 3), "float32"),
    ("layer4.1.bn1.weight", (512,), "float32"),
    ("layer4.1.bn1.bias", (512,), "float32"),
    ("layer4.1.bn1.running_mean", (512,), "float32"),
    ("layer4.1.bn1.running_var", (512,), "float32"),
    ("layer4.1.bn1.num_batches_tracked", (), "int64"),
    ("layer4.1.conv2.weight", (512, 512, 3, 3), "float32"),
    ("layer4.1.bn2.weight", (512,), "float32"),
    ("layer4.1.bn2.bias", (512,), "float32"),
    ("layer4.1.bn2.running_mean", (512,), "float32"),
    ("layer4.1.bn2.running_var", (512,), "float32"),
    ("layer4.1.bn2.num_batches_tracked", (), "int64"),
    ("fc.weight", (1000, 512), "float32"),
    ("fc.bias", (1000,), "float32"),
]

# torchvision ResNet-18 trainable parameters: 62 float32 tensors, 11,689,512 elements
# (46.76 MB). BatchNorm running statistics and num_batches_tracked are left out.
RESNET18_SHAPES: list[Spec] = [
    spec
    for spec in RESNET18_STATE_DICT
    if not spec[0].endswith(("running_mean", "running_var", "num_batches_tracked"))
]


def _gpt2_block(i: int) -> list[Spec]:
    p = f"h.{i}."
    return [
        (p + "ln_1.weight", (768,), "float32"),
        (p + "ln_1.bias", (768,), "float32"),
        (p + "attn.c_attn.weight", (768, 2304), "float32"),
        (p + "attn.c_attn.bias", (2304,), "float32"),
        (p + "attn.c_proj.weight", (768, 768), "float32"),
        (p + "attn.c_proj.bias", (768,), "float32"),
        (p + "ln_2.weight", (768,), "float32"),
        (p + "ln_2.bias", (768,), "float32"),
        (p + "mlp.c_fc.weight", (768, 3072), "float32"),
        (p + "mlp.c_fc.bias", (3072,), "float32"),
        (p + "mlp.c_proj.weight", (3072, 768), "float32"),
        (p + "mlp.c_proj.bias", (768,), "float32"),
    ]


# Hugging Face GPT2Model (GPT-2 small): 148 float32 tensors, 124,439,808 elements
# (497.8 MB). Conv1D weights are stored (in, out), as in the checkpoint.
GPT2_SMALL_SHAPES: list[Spec] = [
    ("wte.weight", (50257, 768), "float32"),
    ("wpe.weight", (1024, 768), "float32"),
    *(spec for i in range(12) for spec in _gpt2_block(i)),
    ("ln_f.weight", (768,), "float32"),
    ("ln_f.bias", (768,), "float32"),
]

# A tiny CNN + MLP mix covering 0-d to 4-D tensors and a few dtypes, for smoke runs.
SMALL_SHAPES: list[Spec] = [
    ("conv.weight", (16, 3, 3, 3), "float32"),
    ("conv.bias", (16,), "float32"),
    ("bn.weight", (16,), "float32"),
    ("bn.running_mean", (16,), "float32"),
    ("bn.num_batches_tracked", (), "int64"),
    ("fc1.weight", (128, 256), "float32"),
    ("fc1.bias", (128,), "float32"),
    ("fc2.weight", (10, 128), "float16"),
    ("fc2.bias", (10,), "float64"),
]

MODELS: dict[str, list[Spec]] = {
    "resnet18": RESNET18_SHAPES,
    "gpt2": GPT2_SMALL_SHAPES,
    "small": SMALL_SHAPES,
}
