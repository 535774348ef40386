// Built by make.sh: a class library whose assembly and file versions differ, so a reader that
// mixes them up fails.
[assembly: System.Reflection.AssemblyVersion("1.2.3.4")]
[assembly: System.Reflection.AssemblyFileVersion("5.6.7.8")]
namespace Versioned { public static class Marker { public static string Text() { return "versioned"; } } }
