#pragma once
// Umbrella header for the committed protoc-c output (regenerate with Scripts/gen-proto.sh).
