"""The CIFAR ResNet-20 training step and its convolutions, written as a PyTorch user would.

The network of He et al. 2016 (section 4.2), as :func:`research.architectures.resnet20`
builds it in JAX: a 3x3 stem of 16 channels, 3 stages of 3 basic blocks (16,
32, 64 channels), BatchNorm after every convolution (no convolution bias),
identity shortcuts that subsample and zero-pad the new channels where the
shape changes (option A, no parameters), global average pooling, a linear
layer: 269,722 parameters for 10 classes (272,474 is option B's count, with
1x1 projection shortcuts). Convolutions start He-normal with fan-out.

torch is optional (the ``bench`` extra) and imported only inside functions;
:func:`research.bench.torch_reference.available` says whether it can run.
Threads are limited to the cores JAX uses (``torch.set_num_threads``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from research.bench import torch_reference

RESNET20_PARAMETERS = 269_722  # option A, 10 classes, width 16
MEMORY_FORMATS = ("contiguous", "channels_last")  # NCHW, and NHWC in memory


def _basic_block_class(torch):
  functional = torch.nn.functional

  class BasicBlock(torch.nn.Module):
    """conv-BN-relu-conv-BN, plus the option-A shortcut, then relu."""

    def __init__(self, in_channels: int, channels: int, stride: int):
      super().__init__()
      self.conv1 = torch.nn.Conv2d(in_channels, channels, 3, stride, 1, bias=False)
      self.bn1 = torch.nn.BatchNorm2d(channels)
      self.conv2 = torch.nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
      self.bn2 = torch.nn.BatchNorm2d(channels)
      self.stride, self.extra_channels = stride, channels - in_channels

    def shortcut(self, x):
      if self.stride == 1 and self.extra_channels == 0:
        return x
      x = x[:, :, ::self.stride, ::self.stride]  # subsample, pad the new channels with 0
      return functional.pad(x, (0, 0, 0, 0, 0, self.extra_channels))

    def forward(self, x):
      h = torch.relu(self.bn1(self.conv1(x)))
      return torch.relu(self.bn2(self.conv2(h)) + self.shortcut(x))

  return BasicBlock


def resnet20(torch, num_classes: int = 10, width: int = 16, in_channels: int = 3):
  """The CIFAR ResNet-20 as an ``nn.Sequential``; ``width`` scales the channels."""
  block = _basic_block_class(torch)
  layers = [torch.nn.Conv2d(in_channels, width, 3, 1, 1, bias=False),
            torch.nn.BatchNorm2d(width), torch.nn.ReLU()]
  channels = width
  for stage, out_channels in enumerate((width, 2 * width, 4 * width)):
    for index in range(3):
      layers.append(block(channels, out_channels, 2 if stage > 0 and index == 0 else 1))
      channels = out_channels
  layers += [torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(channels, num_classes)]
  model = torch.nn.Sequential(*layers)
  for module in model.modules():
    if isinstance(module, torch.nn.Conv2d):
      torch.nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
  return model


def parameter_count(model) -> int:
  """How many numbers ``model`` trains."""
  return sum(parameter.numel() for parameter in model.parameters() if parameter.requires_grad)


def training_step(batch: int, image_size: int, num_classes: int = 10, width: int = 16,
                  memory_format: str = "contiguous") -> dict[str, Callable[[], Any]]:
  """The training step (SGD 0.1, momentum 0.9, BatchNorm training), and its parts.

  Returns callables on one fixed random batch: ``step`` (forward, backward,
  update), ``forward_backward`` (no update) and ``forward`` (training mode,
  no autograd graph). ``memory_format`` is ``"contiguous"`` (NCHW) or
  ``"channels_last"``.
  """
  torch = torch_reference.import_torch()
  torch.manual_seed(0)
  layout = _memory_format(torch, memory_format)
  model = resnet20(torch, num_classes, width).to(memory_format=layout).train()
  images = torch.randn(batch, 3, image_size, image_size).to(memory_format=layout)
  labels = torch.randint(0, num_classes, (batch,))
  optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
  loss_function = torch.nn.CrossEntropyLoss()

  def forward_backward():
    optimizer.zero_grad(set_to_none=True)
    loss = loss_function(model(images), labels)
    loss.backward()
    return loss

  def step():
    loss = forward_backward()
    optimizer.step()
    return loss

  def forward():
    with torch.no_grad():
      return loss_function(model(images), labels)

  return {"forward": forward, "forward_backward": forward_backward, "step": step}


def _memory_format(torch, name: str):
  if name not in MEMORY_FORMATS:
    raise ValueError(f"memory_format={name!r} is not valid; choose from {', '.join(MEMORY_FORMATS)}.")
  return torch.channels_last if name == "channels_last" else torch.contiguous_format


def conv_ops(batch: int, size: int, channels: int,
             memory_format: str = "contiguous") -> dict[str, Callable[[], Any]]:
  """One 3x3 stride-1 convolution, ``channels`` to ``channels`` at ``size`` x ``size``.

  Returns callables: ``forward``, ``input_grad`` and ``kernel_grad``, the two
  convolutions of its backward pass (``aten.convolution_backward``, the op
  autograd calls, asked for one gradient each), on fixed random tensors.
  """
  torch = torch_reference.import_torch()
  generator = torch.Generator().manual_seed(0)
  layout = _memory_format(torch, memory_format)
  x = torch.randn(batch, channels, size, size, generator=generator).to(memory_format=layout)
  kernel = torch.randn(channels, channels, 3, 3, generator=generator).to(memory_format=layout)
  cotangent = torch.randn(batch, channels, size, size, generator=generator).to(memory_format=layout)

  def backward(input_grad: bool) -> Callable[[], Any]:
    def call():
      with torch.no_grad():
        grads = torch.ops.aten.convolution_backward(
            cotangent, x, kernel, None, [1, 1], [1, 1], [1, 1], False, [0, 0], 1,
            [input_grad, not input_grad, False])
      return grads[0 if input_grad else 1]
    return call

  def forward():
    with torch.no_grad():
      return torch.nn.functional.conv2d(x, kernel, padding=1)

  return {"forward": forward, "input_grad": backward(True), "kernel_grad": backward(False)}


TORCH_OP_CATEGORIES = (  # (category, any of these in an op's name): the first match wins
    ("convolution", ("convolution", "conv2d")),
    ("batch norm", ("batch_norm",)),
    ("optimizer", ("_foreach", "sgd")),
    ("matmul", ("addmm", "::mm", "bmm", "linear")),
    ("reduction", ("mean", "sum", "softmax", "nll_loss")),
    ("elementwise", ("relu", "threshold", "add", "mul", "div", "pad", "slice", "copy", "fill",
                     "zero", "empty", "clone", "cat", "as_strided")),
)


def op_category(name: str) -> str:
  """The kind of work a PyTorch profiler event does, from its name.

  Examples:
    >>> op_category("aten::convolution_backward"), op_category("aten::native_batch_norm")
    ('convolution', 'batch norm')
    >>> op_category("autograd::engine::evaluate_function: ConvolutionBackward0")
    'other'
  """
  if name.startswith("aten::"):
    for category, parts in TORCH_OP_CATEGORIES:
      if any(part in name for part in parts):
        return category
  return "other"


def op_profile(step: Callable[[], Any], calls: int = 2) -> dict[str, Any]:
  """Where ``calls`` of ``step`` spend their time: each category's self CPU seconds per call.

  ``torch.profiler`` counts an op's self time, its children's apart, on the
  thread that called it (the intra-op threads' work inside it included), so
  the categories add up to the step's time on its calling thread. Also the
  slowest ops by self time.
  """
  torch = torch_reference.import_torch()
  step()  # warm
  with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profiler:
    for _ in range(calls):
      step()
  events = [(event.key, event.self_cpu_time_total / 1e6 / calls, event.count // calls)
            for event in profiler.key_averages()]
  total = sum(seconds for _, seconds, _ in events)
  categories: dict[str, dict[str, float]] = {}
  for name, seconds, _ in events:
    row = categories.setdefault(op_category(name), {"seconds": 0.0, "share": 0.0})
    row["seconds"] += seconds
    row["share"] += seconds / total if total else 0.0
  slowest = sorted(events, key=lambda event: event[1], reverse=True)[:8]
  return {"self_seconds": total, "categories": categories,
          "slowest": [{"name": name, "category": op_category(name), "seconds": seconds,
                       "calls": count} for name, seconds, count in slowest]}
