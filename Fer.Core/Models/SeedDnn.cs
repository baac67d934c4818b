using TorchSharp;
using static TorchSharp.torch;

namespace Fer.Core.Models;

/// <summary>
/// The seed report's DNN (section 2): 2304 -> 1024 -> 1024 -> 768 -> 768 -> 512 -> 512 -> 7 with ReLU and
/// dropout after each hidden layer, 5,447,687 parameters. The report's table starts at dense_1 on the already
/// flattened image, so dense_1 flattens its input itself and the table keeps the report's 21 rows.
/// </summary>
public sealed class SeedDnn : FerModel
{
    private static readonly int[] Widths = [1024, 1024, 768, 768, 512, 512];

    private readonly nn.Module<Tensor, Tensor> dense_1, activation_1, dropout_1, dense_2, activation_2, dropout_2,
        dense_3, activation_3, dropout_3, dense_4, activation_4, dropout_4, dense_5, activation_5, dropout_5,
        dense_6, activation_6, dropout_6, dense_7, activation_7;

    private readonly List<NamedLayer> _layers;

    public SeedDnn(int numClasses = 7, int side = 48, double dropout = 0.3) : base("SeedDnn")
    {
        NumClasses = numClasses;
        InputSide = side;
        dense_1 = new FlattenDense((long)side * side, Widths[0]);
        activation_1 = nn.ReLU(); dropout_1 = new SeededDropout(dropout);
        dense_2 = nn.Linear(Widths[0], Widths[1]); activation_2 = nn.ReLU(); dropout_2 = new SeededDropout(dropout);
        dense_3 = nn.Linear(Widths[1], Widths[2]); activation_3 = nn.ReLU(); dropout_3 = new SeededDropout(dropout);
        dense_4 = nn.Linear(Widths[2], Widths[3]); activation_4 = nn.ReLU(); dropout_4 = new SeededDropout(dropout);
        dense_5 = nn.Linear(Widths[3], Widths[4]); activation_5 = nn.ReLU(); dropout_5 = new SeededDropout(dropout);
        dense_6 = nn.Linear(Widths[4], Widths[5]); activation_6 = nn.ReLU(); dropout_6 = new SeededDropout(dropout);
        dense_7 = nn.Linear(Widths[5], numClasses);
        activation_7 = nn.Identity(); // the report's softmax; the loss applies it to the logits
        RegisterComponents();
        KerasInitialization.Apply(this);
        _layers =
        [
            new("dense_1", "Dense", dense_1), new("activation_1", "Activation", activation_1), new("dropout_1", "Dropout", dropout_1),
            new("dense_2", "Dense", dense_2), new("activation_2", "Activation", activation_2), new("dropout_2", "Dropout", dropout_2),
            new("dense_3", "Dense", dense_3), new("activation_3", "Activation", activation_3), new("dropout_3", "Dropout", dropout_3),
            new("dense_4", "Dense", dense_4), new("activation_4", "Activation", activation_4), new("dropout_4", "Dropout", dropout_4),
            new("dense_5", "Dense", dense_5), new("activation_5", "Activation", activation_5), new("dropout_5", "Dropout", dropout_5),
            new("dense_6", "Dense", dense_6), new("activation_6", "Activation", activation_6), new("dropout_6", "Dropout", dropout_6),
            new("dense_7", "Dense", dense_7), new("activation_7", "Activation", activation_7),
        ];
    }

    public override IReadOnlyList<NamedLayer> Layers => _layers;

    /// <summary>Keras' glorot_uniform and zero biases, as the report's model had, from a generator seeded with <paramref name="seed"/>.</summary>
    public override void Initialize(long seed) =>
        KerasInitialization.Apply(this, new torch.Generator((ulong)seed, torch.CPU));
    public override int InputSide { get; }
    public override int NumClasses { get; }
}
