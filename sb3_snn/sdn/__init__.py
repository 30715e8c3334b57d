"""SDN: a spiking student distilled from any SB3 teacher (Zhang et al., arXiv 2108.10078)."""

from sb3_snn.sdn.distillation import DistillationCallback
from sb3_snn.sdn.losses import LOSSES, distillation_loss
from sb3_snn.sdn.policies import SDNCnnPolicy, SDNPolicy
from sb3_snn.sdn.sdn import SDN
from sb3_snn.sdn.teachers import Teacher, TeacherMismatchError, as_teacher, load_teacher

__all__ = [
    "LOSSES", "SDN", "DistillationCallback", "SDNCnnPolicy", "SDNPolicy", "Teacher", "TeacherMismatchError",
    "as_teacher", "distillation_loss", "load_teacher",
]
