using TorchSharp;
using static TorchSharp.torch;

namespace Fer.Core.Models;

/// <summary>
/// The seed report's CNN (hw3-report section 1), layer for layer: 4,087,323 parameters on 48x48 inputs.
/// Fields are named as Keras named the layers, so state_dict keys and explanation targets use those names.
/// The report's final softmax (activation_3) is an identity here: the loss applies log-softmax to the logits.
/// </summary>
public sealed class SeedCnn : FerModel
{
    private readonly nn.Module<Tensor, Tensor> conv2d_1, zero_padding2d_1, max_pooling2d_1, zero_padding2d_2, conv2d_2,
        zero_padding2d_3, conv2d_3, average_pooling2d_1, zero_padding2d_4, dropout_1, conv2d_4, zero_padding2d_5, conv2d_5,
        zero_padding2d_6, dropout_2, conv2d_6, zero_padding2d_7, average_pooling2d_2, dropout_3, flatten_1,
        dense_1, activation_1, dropout_4, dense_2, activation_2, dropout_5, dense_3, activation_3;

    private readonly List<NamedLayer> _layers;

    public SeedCnn(int numClasses = 7, int side = 48, double convDropout = 0.3, double denseDropout = 0.5) : base("SeedCnn")
    {
        NumClasses = numClasses;
        InputSide = side;
        conv2d_1 = new Conv2dRelu(1, 64, 5);
        zero_padding2d_1 = nn.ZeroPad2d(2);
        max_pooling2d_1 = nn.MaxPool2d(5, 2);
        zero_padding2d_2 = nn.ZeroPad2d(1);
        conv2d_2 = new Conv2dRelu(64, 64, 3);
        zero_padding2d_3 = nn.ZeroPad2d(1);
        conv2d_3 = new Conv2dRelu(64, 64, 3);
        average_pooling2d_1 = nn.AvgPool2d(3, 2);
        zero_padding2d_4 = nn.ZeroPad2d(1);
        dropout_1 = new SeededDropout(convDropout);
        conv2d_4 = new Conv2dRelu(64, 96, 3);
        zero_padding2d_5 = nn.ZeroPad2d(1);
        conv2d_5 = new Conv2dRelu(96, 128, 3);
        zero_padding2d_6 = nn.ZeroPad2d(1);
        dropout_2 = new SeededDropout(convDropout);
        conv2d_6 = new Conv2dRelu(128, 128, 3);
        zero_padding2d_7 = nn.ZeroPad2d(1);
        average_pooling2d_2 = nn.AvgPool2d(3, 2);
        dropout_3 = new SeededDropout(convDropout);
        flatten_1 = nn.Flatten();
        int s = FlattenedSide(side);
        dense_1 = nn.Linear(128L * s * s, 900);
        activation_1 = nn.ReLU();
        dropout_4 = new SeededDropout(denseDropout);
        dense_2 = nn.Linear(900, 900);
        activation_2 = nn.ReLU();
        dropout_5 = new SeededDropout(denseDropout);
        dense_3 = nn.Linear(900, numClasses);
        activation_3 = nn.Identity();
        RegisterComponents();
        KerasInitialization.Apply(this);

        _layers =
        [
            new("conv2d_1", "Conv2D", conv2d_1), new("zero_padding2d_1", "ZeroPadding2D", zero_padding2d_1),
            new("max_pooling2d_1", "MaxPooling2D", max_pooling2d_1), new("zero_padding2d_2", "ZeroPadding2D", zero_padding2d_2),
            new("conv2d_2", "Conv2D", conv2d_2), new("zero_padding2d_3", "ZeroPadding2D", zero_padding2d_3),
            new("conv2d_3", "Conv2D", conv2d_3), new("average_pooling2d_1", "AveragePooling2D", average_pooling2d_1),
            new("zero_padding2d_4", "ZeroPadding2D", zero_padding2d_4), new("dropout_1", "Dropout", dropout_1),
            new("conv2d_4", "Conv2D", conv2d_4), new("zero_padding2d_5", "ZeroPadding2D", zero_padding2d_5),
            new("conv2d_5", "Conv2D", conv2d_5), new("zero_padding2d_6", "ZeroPadding2D", zero_padding2d_6),
            new("dropout_2", "Dropout", dropout_2), new("conv2d_6", "Conv2D", conv2d_6),
            new("zero_padding2d_7", "ZeroPadding2D", zero_padding2d_7), new("average_pooling2d_2", "AveragePooling2D", average_pooling2d_2),
            new("dropout_3", "Dropout", dropout_3), new("flatten_1", "Flatten", flatten_1),
            new("dense_1", "Dense", dense_1), new("activation_1", "Activation", activation_1), new("dropout_4", "Dropout", dropout_4),
            new("dense_2", "Dense", dense_2), new("activation_2", "Activation", activation_2), new("dropout_5", "Dropout", dropout_5),
            new("dense_3", "Dense", dense_3), new("activation_3", "Activation", activation_3),
        ];
    }

    public override IReadOnlyList<NamedLayer> Layers => _layers;

    /// <summary>Keras' glorot_uniform and zero biases, as the report's model had, from a generator seeded with <paramref name="seed"/>.</summary>
    public override void Initialize(long seed) =>
        KerasInitialization.Apply(this, new torch.Generator((ulong)seed, torch.CPU));
    public override int InputSide { get; }
    public override int NumClasses { get; }

    /// <summary>Spatial side before flatten_1: 48 -> 44 -> 48 -> 22 -> 24 -> 22 -> 24 -> 22 -> 10 -> 12 -> 10 -> 12 -> 10 -> 12 -> 10 -> 12 -> 5.</summary>
    private static int FlattenedSide(int side)
    {
        int s = side - 4 + 4;           // conv 5x5 valid, pad 2
        s = (s - 5) / 2 + 1;            // max-pool 5 stride 2
        s = s + 2 - 2 + 2 - 2;          // pad 1 + conv 3x3, twice
        s = (s - 3) / 2 + 1;            // avg-pool 3 stride 2
        s = s + 2 - 2 + 2 - 2 + 2 - 2 + 2; // pad, conv, pad, conv, pad, conv, pad
        s = (s - 3) / 2 + 1;            // avg-pool 3 stride 2
        if (s < 1) throw new ArgumentOutOfRangeException(nameof(side), $"images of side {side} are too small for the seed CNN (at least 23)");
        return s;
    }
}
