#!/usr/bin/env bash
# System libraries for napari under a virtual screen: Xvfb, Mesa OpenGL and the X/Qt libraries PyQt5 loads.
# Installs only what is missing; needs root (or sudo) when something is.
set -euo pipefail
packages=(
  xvfb xauth libgl1-mesa-dri libglx-mesa0 libegl1 libgl1 libxkbcommon-x11-0 libxkbcommon0
  libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0 libxcb-render-util0 libxcb-xinerama0
  libxcb-xfixes0 libxcb-shape0 libxcb-xkb1 libxcb-cursor0 libxrender1 libxi6 libdbus-1-3 libfontconfig1
  libfreetype6 fonts-dejavu-core
)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "installing system packages: ${missing[*]}"
as_root=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "need root to install: ${missing[*]}" >&2; exit 1; }
  as_root=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
