using Fer.Core.Data;
using Fer.Core.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Fer.Core.Tests.Training;

/// <summary>Tests that train share torch's global generator (dropout) and so must not run beside each other.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class TorchRandomCollection
{
    public const string Name = "torch global RNG";
}

/// <summary>A small conv + dense classifier whose initial weights come from its own generator, not torch's global one.</summary>
internal sealed class TinyModel : FerModel
{
    private readonly Conv2d conv2d_1;
    private readonly ReLU activation_1;
    private readonly Flatten flatten_1;
    private readonly Dropout dropout_1;
    private readonly Linear dense_1;
    private readonly IReadOnlyList<NamedLayer> _layers;

    public TinyModel(long initSeed, int numClasses = 3, int side = 12, double dropout = 0.2) : base("tiny")
    {
        conv2d_1 = nn.Conv2d(1, 4, 3);
        activation_1 = nn.ReLU();
        flatten_1 = nn.Flatten();
        dropout_1 = nn.Dropout(dropout);
        dense_1 = nn.Linear(4 * (side - 2) * (side - 2), numClasses);
        RegisterComponents();
        _layers =
        [
            new("conv2d_1", "Conv2D", conv2d_1), new("activation_1", "Activation", activation_1),
            new("flatten_1", "Flatten", flatten_1), new("dropout_1", "Dropout", dropout_1), new("dense_1", "Dense", dense_1),
        ];
        InputSide = side;
        NumClasses = numClasses;
        using var generator = new Generator((ulong)initSeed);
        using var noGrad = no_grad();
        foreach (var p in parameters())
        {
            double bound = 1.0 / Math.Sqrt(p.shape.Length > 1 ? p.shape.Skip(1).Aggregate(1L, (a, b) => a * b) : p.shape[0]);
            using var values = rand(p.shape, generator: generator).mul_(2 * bound).sub_(bound);
            p.copy_(values);
        }
    }

    public override IReadOnlyList<NamedLayer> Layers => _layers;
    public override int InputSide { get; }
    public override int NumClasses { get; }

    /// <summary>Every parameter and buffer as flat float arrays, for exact comparisons.</summary>
    public Dictionary<string, float[]> Snapshot() =>
        state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().cpu().to(ScalarType.Float32).data<float>().ToArray());
}

internal static class ToyFaces
{
    public static readonly string[] Classes = ["horizontal", "vertical", "dot"];

    /// <summary>
    /// Images of a learnable pattern on noise: class 0 a bright horizontal bar, class 1 a vertical bar, class 2 a
    /// bright 3x3 square, each at a random place. Labels are flipped to a random class with probability
    /// <paramref name="labelNoise"/>; <paramref name="classShares"/> sets how often each class occurs.
    /// </summary>
    public static FaceSet Make(int count, int seed, int side = 12, double labelNoise = 0, double[]? classShares = null)
    {
        var random = new Random(seed);
        var shares = classShares ?? [1, 1, 1];
        double total = shares.Sum();
        var pixels = new byte[count * side * side];
        var labels = new int[count];
        for (int i = 0; i < count; i++)
        {
            double u = random.NextDouble() * total;
            int label = 0;
            while (label < shares.Length - 1 && u >= shares[label]) u -= shares[label++];
            var image = pixels.AsSpan(i * side * side, side * side);
            for (int k = 0; k < image.Length; k++) image[k] = (byte)random.Next(0, 90);
            int r = random.Next(1, side - 2), c = random.Next(1, side - 2);
            for (int k = 0; k < side; k++)
            {
                if (label == 0) image[r * side + k] = (byte)random.Next(200, 256);
                if (label == 1) image[k * side + c] = (byte)random.Next(200, 256);
            }
            if (label == 2)
                for (int dr = -1; dr <= 1; dr++)
                    for (int dc = -1; dc <= 1; dc++) image[(r + dr) * side + c + dc] = 255;
            labels[i] = random.NextDouble() < labelNoise ? random.Next(3) : label;
        }
        return new FaceSet(side, Classes, Enumerable.Range(0, count).Select(i => (long)(seed * 100_000 + i)).ToArray(), labels,
            Enumerable.Range(0, count).Select(i => (long)(seed * 100_000 + i)).ToArray(), new bool[count],
            new FaceUsage[count], pixels);
    }
}

/// <summary>Reports synchronously on the training thread (Progress&lt;T&gt; would post to the thread pool).</summary>
internal sealed class InlineProgress<T>(Action<T> report) : IProgress<T>
{
    public void Report(T value) => report(value);
}

internal sealed class TempDir : IDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory("fer-trainer-test-").FullName;
    public void Dispose() { try { Directory.Delete(Path, recursive: true); } catch (IOException) { } }
}
