#!/bin/sh
# Regenerates the test DLLs with Debian's mono-mcs (apt-get install mono-mcs).
set -e
cd "$(dirname "$0")"
mcs -target:library -deterministic -out:Versioned.dll Versioned.cs
mcs -target:library -deterministic -out:Unversioned.dll Unversioned.cs
