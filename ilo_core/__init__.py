"""ILO Studio's engine: Intermediate Layer Optimization (Daras et al., ICML 2021) for repairing
and reconstructing face images with a pretrained generator. The public API:

    from ilo_core import PhotoTask, default_config, load_generator, solve, take_photo

    generator = load_generator("default")            # or a StyleGAN-2 name / checkpoint
    photo = take_photo("me.jpg", generator.resolution, "landmarks", generator.face_frame,
                       mask_file="hole.png")         # white = the region to repair
    problem = photo.pose(PhotoTask("inpaint"), generator.device)
    job = solve(generator, problem.operator, problem.observation, default_config(generator, "inpaint"))
    repaired = photo.paste(to_uint8(job.images()), "inpaint")   # H x W x 3 uint8, the photo's size

A folder or a clip is one job: `FolderRepair`, and `ClipRepair(generator, probe_clip(path),
ClipRequest(PhotoTask("inpaint")), painted, work_dir)` whose frames are warm-started
(`WarmStart`); docs/sequences.md.

docs/architecture.md shows the wings and where each concept lives. Images are [B, 3, R, R]
tensors in [-1, 1]; uint8 arrays are H x W x 3.
"""

from __future__ import annotations

from ilo_core.checkpoints import load_generator
from ilo_core.engine.config import SolverConfig
from ilo_core.engine.estimate import Estimate
from ilo_core.engine.methods import Solve, solve
from ilo_core.engine.presets import default_config
from ilo_core.engine.reconstruction import Reconstruction
from ilo_core.engine.solver import ILOSolver, Progress
from ilo_core.engine.warm import WarmStart
from ilo_core.generators import FaceFrame, SplitGenerator, Tuning
from ilo_core.photo.images import load_image, save_image_atomic
from ilo_core.photo.images import tensor_to_uint8 as to_uint8
from ilo_core.photo.intake import InputError, PhotoTask, TakenPhoto, take_photo
from ilo_core.physics.operators import TASKS
from ilo_core.physics.problems import Problem, evaluate, from_observation, simulate
from ilo_core.sequences.clip_repair import ClipRepair, ClipRequest
from ilo_core.sequences.clips import probe_clip
from ilo_core.sequences.folder_repair import FolderRepair, FolderSettings

__all__ = ["ClipRepair", "ClipRequest", "FolderRepair", "FolderSettings", "WarmStart", "probe_clip", "Estimate", "FaceFrame", "ILOSolver", "InputError", "PhotoTask", "Problem", "Progress", "Reconstruction",
           "Solve", "SolverConfig", "SplitGenerator", "TASKS", "TakenPhoto", "Tuning", "default_config", "evaluate",
           "from_observation", "load_generator", "load_image", "save_image_atomic", "simulate", "solve", "take_photo",
           "to_uint8"]
