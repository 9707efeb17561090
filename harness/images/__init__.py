"""Container images built here, from the toolchain's binaries and Debian's files: no
base image is pulled and no registry is involved (`harness images build | list`)."""

from harness.images.build import BuiltImage, ImageBuilder, ImageError
from harness.images.recipes import NODE_IMAGES, RECIPES, Recipe

__all__ = ["NODE_IMAGES", "RECIPES", "BuiltImage", "ImageBuilder", "ImageError", "Recipe"]
