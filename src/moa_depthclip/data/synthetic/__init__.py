"""Embedded default dataset: procedurally generated indoor RGB-D scenes rendered by ray casting.

Why this exists: NYU and KITTI cannot be downloaded everywhere, but the whole pipeline (train,
evaluate, predict) should run anywhere. These scenes have real geometry, so the depth is exactly the
depth of the picture, and they carry the monocular cues a network can learn from:

* perspective of a rectangular room (floor/wall/ceiling lines converge) seen by a pinhole camera with
  NYU-like intrinsics at human height with random yaw/pitch/roll;
* texture gradient: tiles, planks, bricks, stripes and noise defined in metres on the surfaces, so
  their projected size shrinks with distance (anti-aliased by the pixel footprint);
* furniture-like boxes standing on the floor (cabinets, tables with legs, sofas, shelves, cubes),
  which occlude the room and cast shadows;
* Lambertian shading from 1-2 point lights with distance falloff, ambient light darkened near room
  corners and object contacts (a cheap ambient-occlusion approximation).

Shortcuts are broken on purpose: lights are placed anywhere under the ceiling (not at the camera), so
brightness is not a function of depth; albedo, textures, room size, camera pose, exposure and colour
cast are random; wall decals (pictures, doors, bright windows) add brightness changes without depth
changes.

Depth is z-depth along the optical axis in metres (as NYU), every pixel valid. Scene ``i`` of
``(seed, split)`` depends on nothing else (not on order, batch or worker): its random stream is
``SeedSequence([seed, split_code, i])``, and the splits use different codes, so they never share a
scene.
"""

from __future__ import annotations

from moa_depthclip.data.cameras import Intrinsics
from moa_depthclip.data.synthetic.dataset import SyntheticScenes, export_sync_layout
from moa_depthclip.data.synthetic.generator import make_scene, random_scene, scene_rng
from moa_depthclip.data.synthetic.raycast import Rendered, render_scene
from moa_depthclip.data.synthetic.scene import (
    CEILING,
    FACE_NAMES,
    FLOOR,
    MAX_SCENE_DEPTH,
    SPLIT_CODES,
    WALL_FACES,
    Box,
    Decal,
    Light,
    Material,
    Scene,
    camera_to_world,
)
from moa_depthclip.data.synthetic.textures import shade_material

__all__ = [
    "Box",
    "CEILING",
    "Decal",
    "FACE_NAMES",
    "FLOOR",
    "Intrinsics",
    "Light",
    "MAX_SCENE_DEPTH",
    "Material",
    "Rendered",
    "SPLIT_CODES",
    "Scene",
    "SyntheticScenes",
    "WALL_FACES",
    "camera_to_world",
    "export_sync_layout",
    "make_scene",
    "random_scene",
    "render_scene",
    "scene_rng",
    "shade_material",
]
