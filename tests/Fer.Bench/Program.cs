using System.Reflection;
using Fer.Bench;

// Usage: dotnet run --project tests/Fer.Bench -c Release -- [--quick] [name ...]
Fer.Core.TorchRuntime.Configure();
var quick = args.Contains("--quick");
var names = args.Where(a => !a.StartsWith("--")).ToHashSet(StringComparer.OrdinalIgnoreCase);
var all = Assembly.GetExecutingAssembly().GetTypes()
    .Where(t => typeof(IBenchmark).IsAssignableFrom(t) && t is { IsInterface: false, IsAbstract: false })
    .Select(t => (IBenchmark)Activator.CreateInstance(t)!)
    .OrderBy(b => b.Name, StringComparer.Ordinal)
    .ToList();
var unknown = names.Except(all.Select(b => b.Name), StringComparer.OrdinalIgnoreCase).ToList();
if (unknown.Count > 0)
{
    Console.Error.WriteLine($"unknown benchmark(s): {string.Join(", ", unknown)}; available: {string.Join(", ", all.Select(b => b.Name))}");
    return 2;
}
Console.WriteLine($"Fer benchmarks on {Environment.ProcessorCount} cores, {Environment.OSVersion}, .NET {Environment.Version}");
foreach (var b in all.Where(b => names.Count == 0 || names.Contains(b.Name)))
{
    Console.WriteLine($"== {b.Name}: {b.Description}");
    b.Run(quick);
}
return 0;
