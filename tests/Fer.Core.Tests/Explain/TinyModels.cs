using Fer.Core.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Fer.Core.Tests.Explain;

/// <summary>
/// A small CNN in the seed model's style (Keras layer names, conv+ReLU as one layer): conv2d_1 -> max_pooling2d_1
/// -> conv2d_2 -> max_pooling2d_2 -> flatten_1 -> dense_1. Weights come from a local generator, so the model is the
/// same for a seed whatever other tests do with torch's global RNG.
/// </summary>
internal sealed class TinyCnn : FerModel
{
    private readonly nn.Module<Tensor, Tensor> conv2d_1, max_pooling2d_1, conv2d_2, max_pooling2d_2, flatten_1, dense_1;
    private readonly NamedLayer[] _layers;

    public TinyCnn(int side, int numClasses, long seed, int filters1 = 4, int filters2 = 6, int kernel = 3)
        : base("tiny_cnn")
    {
        if (side % 4 != 0) throw new ArgumentException("side must be a multiple of 4");
        InputSide = side;
        NumClasses = numClasses;
        int pad = kernel / 2;
        conv2d_1 = nn.Sequential(nn.Conv2d(1, filters1, kernel, padding: pad), nn.ReLU());
        max_pooling2d_1 = nn.MaxPool2d(2);
        conv2d_2 = nn.Sequential(nn.Conv2d(filters1, filters2, kernel, padding: pad), nn.ReLU());
        max_pooling2d_2 = nn.MaxPool2d(2);
        flatten_1 = nn.Flatten();
        dense_1 = nn.Linear(filters2 * (side / 4) * (side / 4), numClasses);
        RegisterComponents();
        _layers =
        [
            new("conv2d_1", "Conv2D", conv2d_1),
            new("max_pooling2d_1", "MaxPooling2D", max_pooling2d_1),
            new("conv2d_2", "Conv2D", conv2d_2),
            new("max_pooling2d_2", "MaxPooling2D", max_pooling2d_2),
            new("flatten_1", "Flatten", flatten_1),
            new("dense_1", "Dense", dense_1),
        ];
        TinyModels.InitialiseDeterministically(this, seed);
    }

    public override IReadOnlyList<NamedLayer> Layers => _layers;
    public override int InputSide { get; }
    public override int NumClasses { get; }
}

internal static class TinyModels
{
    /// <summary>PyTorch's default-like uniform(+-1/sqrt(fan_in)) initialisation from a generator of our own.</summary>
    public static void InitialiseDeterministically(nn.Module model, long seed)
    {
        using var noGrad = torch.no_grad();
        var generator = new torch.Generator((ulong)seed, torch.CPU);
        foreach (var (_, parameter) in model.named_parameters())
        {
            long fanIn = parameter.dim() > 1 ? parameter.numel() / parameter.shape[0] : parameter.numel();
            double bound = 1.0 / Math.Sqrt(Math.Max(1, fanIn));
            if (parameter.dim() == 1)
            {
                // A bias: keep it small so random models are not dominated by it.
                bound = 0.1;
            }
            using var values = torch.rand(parameter.shape, generator: generator).mul(2 * bound).sub(bound);
            parameter.copy_(values);
        }
    }

    /// <summary>Plain Adam on cross-entropy, in a fixed shuffled order (a short training loop for tests).</summary>
    public static void Train(FerModel model, Tensor images, Tensor labels, int epochs, int batchSize, double learningRate, long seed)
    {
        model.train();
        using var convolutions = TorchRuntime.ConvolutionsForTraining(model); // the 4->6 convolution: see TorchRuntime
        using var optimiser = torch.optim.Adam(model.parameters(), lr: learningRate);
        int count = (int)images.shape[0];
        var random = new Random((int)seed);
        for (int epoch = 0; epoch < epochs; epoch++)
        {
            var order = Enumerable.Range(0, count).OrderBy(_ => random.Next()).Select(i => (long)i).ToArray();
            for (int start = 0; start < count; start += batchSize)
            {
                using var scope = torch.NewDisposeScope();
                var index = torch.tensor(order.AsSpan(start, Math.Min(batchSize, count - start)).ToArray());
                var loss = torch.nn.functional.cross_entropy(model.call(images.index_select(0, index)), labels.index_select(0, index));
                optimiser.zero_grad();
                loss.backward();
                optimiser.step();
            }
        }
        optimiser.zero_grad();
        model.eval();
    }

    public static double Accuracy(FerModel model, Tensor images, Tensor labels)
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        model.eval();
        return model.call(images).argmax(1).eq(labels).to(ScalarType.Float32).mean().item<float>();
    }
}
