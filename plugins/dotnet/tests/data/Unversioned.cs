// Built by make.sh: no version attributes (assembly version 0.0.0.0).
namespace Unversioned { public static class Marker { public static string Text() { return "none"; } } }
