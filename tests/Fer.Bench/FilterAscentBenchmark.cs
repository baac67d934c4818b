using Fer.Core.Explain;
using Fer.Core.Models;
using TorchSharp;

namespace Fer.Bench;

/// <summary>Filter visualisation: all 64 filters of max_pooling2d_1 optimised as one batch, against one filter at a time.</summary>
public sealed class FilterAscentBenchmark : IBenchmark
{
    public string Name => "ascent";
    public string Description => "gradient ascent on the 64 filters of max_pooling2d_1 (SeedCnn), batched vs one at a time";

    public void Run(bool quick)
    {
        int steps = quick ? 40 : 200, serialFilters = quick ? 2 : 4;
        torch.manual_seed(1);
        using var model = new SeedCnn();
        var options = new FilterAscentOptions(Steps: steps, Seed: 1);
        var batched = FilterVisualizer.Ascend(model, "max_pooling2d_1", options, torch.CPU);
        // The serial loop is timed on a few filters and scaled to 64: running all of them would take minutes.
        var serial = FilterVisualizer.AscendOneByOne(model, "max_pooling2d_1", options, torch.CPU, serialFilters);
        double serialAll = serial.Seconds / serialFilters * batched.FinalActivation.Length;
        Console.WriteLine($"  {batched.FinalActivation.Length} filters x {steps} steps: batched {batched.Seconds:0.0} s; one at a time {serial.Seconds:0.0} s for {serialFilters} filters, " +
                          $"{serialAll:0} s extrapolated to {batched.FinalActivation.Length}; speed-up {serialAll / batched.Seconds:0.0}x");
        Console.WriteLine($"  mean activation {batched.StartActivation.Average():0.000} -> {batched.FinalActivation.Average():0.000}");
    }
}
