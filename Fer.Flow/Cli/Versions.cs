using System.Reflection;
using TorchSharp;

namespace Fer.Flow.Cli;

public static class Versions
{
    public static string Fer => typeof(Versions).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "?";
    public static string TorchSharp => typeof(torch).Assembly.GetName().Version?.ToString() ?? "?";
    public static string LibTorch => torch.__version__;
}
