// Placeholder until Scripts/gen-proto.sh writes the generated sources.
int cbonfireproto_placeholder(void) { return 0; }
