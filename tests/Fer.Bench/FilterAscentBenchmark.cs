using Fer.Core.Explain;
using Fer.Core.Models;
using TorchSharp;

namespace Fer.Bench;

/// <summary>
/// Filter visualisation: all 64 filters of max_pooling2d_1 optimised as one batch (each image through its own filter
/// only, and through the whole layer), against one filter at a time through the whole layer.
/// </summary>
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
        var wholeLayer = FilterVisualizer.Ascend(model, "max_pooling2d_1", options with { SelectedChannelsOnly = false }, torch.CPU);
        double difference = batched.Images.Zip(wholeLayer.Images).Max(p => Math.Abs(p.First - p.Second));
        // The serial loop is timed on a few filters and scaled to 64: running all of them would take minutes.
        var serial = FilterVisualizer.AscendOneByOne(model, "max_pooling2d_1", options, torch.CPU, serialFilters);
        double serialAll = serial.Seconds / serialFilters * batched.FinalActivation.Length;
        int filters = batched.FinalActivation.Length;
        Console.WriteLine($"  {filters} filters x {steps} steps, one at a time: {serial.Seconds:0.0} s for {serialFilters} filters, {serialAll:0} s extrapolated to {filters}");
        Console.WriteLine($"  batched, whole layer: {wholeLayer.Seconds:0.0} s ({serialAll / wholeLayer.Seconds:0.0}x)");
        Console.WriteLine($"  batched, each image's own filter (selected={batched.SelectedChannelsOnly}): {batched.Seconds:0.00} s ({serialAll / batched.Seconds:0.0}x); " +
                          $"largest pixel difference from the whole-layer run {difference:g2}");
        Console.WriteLine($"  mean activation {batched.StartActivation.Average():0.000} -> {batched.FinalActivation.Average():0.000}");
    }
}
