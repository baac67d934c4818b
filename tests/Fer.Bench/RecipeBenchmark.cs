using System.Diagnostics;
using Fer.Core.Data;
using Fer.Core.Ensemble;
using Fer.Core.Models;
using Fer.Core.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Fer.Bench;

/// <summary>
/// The published VGG recipe (flows/sota.fsx) on this machine's CPU: (1) Trainer.Fit images/s with the recipe's
/// augmentation (shift, rotation, zoom, mirror, erasing, random 40x40 crops) against none; goal: ratio >= 0.9.
/// (2) A training step (forward, backward, SGD) and a forward pass in bfloat16 against float32, with the CPU's
/// bf16 flags. (3) Prediction cost of test-time augmentation none / flip / ten_crop.
/// </summary>
public sealed class RecipeBenchmark : IBenchmark
{
    public string Name => "recipe";
    public string Description => "VGG recipe: augmentation cost, bf16 vs fp32 on this CPU, ten-crop prediction cost";

    private const int Side = 48, Classes = 7, Batch = 64;
    private const double Width = 0.25;
    private const int Dense = 512;

    private static FerVgg MakeModel(int crop = 40)
    {
        var model = new FerVgg(Classes, Side, Width, dropout: 0.5, dense: Dense, denseLayers: 2, crop: crop);
        model.Initialize(1);
        return model;
    }

    public void Run(bool quick)
    {
        torch.set_num_threads(Math.Min(2, Environment.ProcessorCount));
        var flags = File.Exists("/proc/cpuinfo")
            ? File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("flags", StringComparison.Ordinal))?.Split(' ')
                .Where(f => f.Contains("bf16") || f.StartsWith("avx512f") || f.StartsWith("amx")).ToList() ?? []
            : [];
        using (var probe = MakeModel())
            Console.WriteLine($"torch threads {torch.get_num_threads()}; model vgg-bn width {Width}, 2 dense layers of {Dense * Width:0}, crop 40 " +
                $"({probe.ParameterCount():N0} parameters), batch {Batch}; CPU bf16/AVX-512 flags: {(flags.Count == 0 ? "none" : string.Join(" ", flags))}");
        Augmentation(quick);
        Precision(quick);
        TestTime(quick);
    }

    /// <summary>(1) Trainer.Fit with and without the recipe's augmentation, turn about; the best epoch of each counts.</summary>
    private static void Augmentation(bool quick)
    {
        int images = quick ? 256 : 1024, epochs = quick ? 2 : 3, rounds = quick ? 1 : 3;
        var train = BenchFaces.Random(images, 1);
        var valid = BenchFaces.Random(64, 2);
        var recipe = new OnlineAugmentation(MaxShift: 0.1, MaxRotationDegrees: 10, MaxZoom: 0.2, HorizontalFlip: true) { EraseProbability = 0.5, CropMargin = 4 };
        double Fit(OnlineAugmentation? augmentation)
        {
            using var model = MakeModel();
            var options = new TrainOptions
            {
                Epochs = epochs, BatchSize = Batch, Optimizer = OptimizerKind.Sgd, LearningRate = 0.01, Momentum = 0.9, Nesterov = true,
                WeightDecay = 1e-4, Augmentation = augmentation, Seed = 1, RestoreBestWeights = false,
            };
            var rates = new List<double>();
            new Trainer(model, options, torch.CPU, "vgg").Fit(train, valid, onEpoch: e => rates.Add(e.ImagesPerSecond));
            return rates.Skip(1).DefaultIfEmpty(rates[0]).Max(); // the first epoch warms up
        }
        double plain = 0, augmented = 0;
        for (int round = 1; round <= rounds; round++)
        {
            double p = Fit(null), a = Fit(recipe);
            Console.WriteLine($"  round {round}: no augmentation {p:F1} images/s, recipe augmentation {a:F1} images/s");
            plain = Math.Max(plain, p);
            augmented = Math.Max(augmented, a);
        }
        Console.WriteLine($"augmentation: {augmented:F1} against {plain:F1} images/s without, ratio {augmented / plain:F3} (goal >= 0.9); {images} images an epoch");
        // The augmentation alone, as the prefetcher runs it beside training: one batch of 64 on the CPU.
        using var batch = torch.rand([Batch, 1, Side, Side], generator: new torch.Generator(6));
        double Once(int b) { var clock = Stopwatch.StartNew(); using (BatchAugmenter.Augment(batch, recipe, 1, 1, b)) { } return clock.Elapsed.TotalMilliseconds; }
        Once(0);
        var times = Enumerable.Range(1, 20).Select(Once).Order().ToList();
        Console.WriteLine($"augmentation alone: {times[times.Count / 2]:F2} ms a batch of {Batch} (median of 20), {Batch / (times[times.Count / 2] / 1000):F0} images/s");
    }

    /// <summary>(2) The same training step and forward pass in float32 and in bfloat16 (weights, activations and gradients).</summary>
    private static void Precision(bool quick)
    {
        int steps = quick ? 3 : 8;
        foreach (var dtype in new[] { ScalarType.Float32, ScalarType.BFloat16 })
        {
            using var model = MakeModel();
            model.to(dtype);
            model.train();
            using var optimizer = torch.optim.SGD(model.parameters(), 0.01, momentum: 0.9, nesterov: true);
            var x = torch.rand([Batch, 1, Side, Side], generator: new torch.Generator(3)).to(dtype);
            var y = torch.randint(0, Classes, [Batch], generator: new torch.Generator(4));
            double Step()
            {
                using var scope = torch.NewDisposeScope();
                var clock = Stopwatch.StartNew();
                optimizer.zero_grad();
                var loss = nn.functional.cross_entropy(model.call(x).to(ScalarType.Float32), y);
                loss.backward();
                optimizer.step();
                return clock.Elapsed.TotalSeconds;
            }
            double Forward()
            {
                using var scope = torch.NewDisposeScope();
                using var noGrad = torch.no_grad();
                var clock = Stopwatch.StartNew();
                model.call(x);
                return clock.Elapsed.TotalSeconds;
            }
            Step();
            double step = Enumerable.Range(0, steps).Min(_ => Step());
            model.eval();
            Forward();
            double forward = Enumerable.Range(0, steps).Min(_ => Forward());
            Console.WriteLine($"precision {dtype,-8}: training step {Batch / step:F1} images/s, forward {Batch / forward:F1} images/s (best of {steps})");
        }
    }

    /// <summary>(3) Predictor.PredictProbabilities under each test-time augmentation, on a trained-shape model that crops.</summary>
    private static void TestTime(bool quick)
    {
        var faces = BenchFaces.Random(quick ? 128 : 512, 5);
        using var model = MakeModel();
        Predictor.PredictProbabilities(model, faces.Select([0, 1, 2, 3]), torch.CPU); // warm-up
        double? none = null;
        foreach (var tta in new[] { TestTimeAugmentation.None, TestTimeAugmentation.Flip, TestTimeAugmentation.TenCrop })
        {
            var clock = Stopwatch.StartNew();
            Predictor.PredictProbabilities(model, faces, torch.CPU, tta, batchSize: 128);
            double rate = faces.Count / clock.Elapsed.TotalSeconds;
            none ??= rate;
            Console.WriteLine($"prediction {tta,-8}: {rate:F1} images/s ({Predictor.Views(model, tta)} views, {none / rate:F1}x the time of none)");
        }
    }
}
