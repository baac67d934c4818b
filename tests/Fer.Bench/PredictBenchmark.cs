using System.Diagnostics;
using Fer.Core.Data;
using Fer.Core.Ensemble;
using Fer.Core.Models;
using TorchSharp;

namespace Fer.Bench;

/// <summary>Prediction throughput of the seed CNN (batched, no-grad), with and without test-time flip.</summary>
public sealed class PredictBenchmark : IBenchmark
{
    public string Name => "predict";
    public string Description => "Predictor images/s for SeedCnn on 2,000 faces, with and without flip TTA";

    public void Run(bool quick)
    {
        int n = quick ? 500 : 2000;
        var faces = SyntheticFaces.Generate(new SyntheticFaceOptions(n, 3));
        torch.manual_seed(1);
        using var model = new SeedCnn();
        Predictor.PredictProbabilities(model, faces.Select([0, 1, 2, 3]), torch.CPU); // warm-up
        foreach (var tta in new[] { TestTimeAugmentation.None, TestTimeAugmentation.Flip })
        {
            var clock = Stopwatch.StartNew();
            Predictor.PredictProbabilities(model, faces, torch.CPU, tta);
            Console.WriteLine($"  TTA {tta,-4}: {n:N0} images in {clock.Elapsed.TotalSeconds:0.00} s = {n / clock.Elapsed.TotalSeconds:0} images/s");
        }
    }
}
