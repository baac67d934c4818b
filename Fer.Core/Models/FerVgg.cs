using TorchSharp;
using static TorchSharp.torch;

namespace Fer.Core.Models;

/// <summary>
/// A VGG-style CNN with batch norm (registry name "vgg-bn"), the shape of the published FER2013 single-model
/// records: four blocks of [conv-BN-ReLU x2, max-pool 2, dropout] with 64/128/256/512 channels (times width),
/// then <c>denseLayers</c> x (dense-BN-ReLU-dropout) of <c>dense</c> units (times width; the published recipe: 2 of 4096)
/// and the classifier. Layers are registered under their Keras-style names. With a crop, a first Cropping2D layer
/// makes the network see the centre square (the published recipe trains on 40x40 crops of the 48x48 faces).
/// </summary>
public sealed class FerVgg : FerModel
{
    private readonly List<NamedLayer> _layers;

    /// <param name="crop">The side of the centre square the network sees (the recipe's 40 of 48); 0 = the whole image.</param>
    public FerVgg(int numClasses = 7, int side = 48, double width = 1.0, double dropout = 0.3, int dense = 256, int denseLayers = 1, int crop = 0) : base("FerVgg")
    {
        if (crop != 0 && (crop < 16 || crop > side || (side - crop) % 2 != 0))
            throw new ArgumentOutOfRangeException(nameof(crop), crop, $"crop must be 0 (none) or from 16 to the image side {side}, and differ from it by an even number of pixels");
        if (!(width > 0)) throw new ArgumentOutOfRangeException(nameof(width), "width must be positive");
        if (dense < 1) throw new ArgumentOutOfRangeException(nameof(dense), "dense must be at least 1 unit");
        if (denseLayers is < 1 or > 8) throw new ArgumentOutOfRangeException(nameof(denseLayers), "dense_layers must be 1 to 8");
        if (side < 16) throw new ArgumentOutOfRangeException(nameof(side), "vgg-bn needs images of side 16 or more");
        NumClasses = numClasses;
        InputSide = side;
        var names = new KerasNames();
        long inChannels = 1;
        int s = side;
        if (crop != 0 && crop < side)
        {
            names.Add("cropping2d", "Cropping2D", new CenterCrop2d((side - crop) / 2));
            s = crop;
        }
        foreach (var baseChannels in new[] { 64, 128, 256, 512 })
        {
            // At least 8 channels: libtorch 2.10's oneDNN computes wrong input gradients for convolutions with 2-4
            // input and 8 output channels (see TorchRuntime), which would corrupt training of very narrow nets.
            long c = Math.Max(8, (long)Math.Round(baseChannels * width));
            for (int k = 0; k < 2; k++)
            {
                names.Add("conv2d", "Conv2D", nn.Conv2d(inChannels, c, 3, padding: 1));
                names.Add("batch_normalization", "BatchNormalization", nn.BatchNorm2d(c));
                names.Add("activation", "Activation", nn.ReLU());
                inChannels = c;
            }
            names.Add("max_pooling2d", "MaxPooling2D", nn.MaxPool2d(2, 2));
            names.Add("dropout", "Dropout", new SeededDropout(dropout));
            s /= 2;
        }
        long hidden = Math.Max(16, (long)Math.Round(dense * width));
        names.Add("flatten", "Flatten", nn.Flatten());
        long features = inChannels * s * s;
        for (int d = 0; d < denseLayers; d++)
        {
            names.Add("dense", "Dense", nn.Linear(features, hidden));
            names.Add("batch_normalization", "BatchNormalization", nn.BatchNorm1d(hidden));
            names.Add("activation", "Activation", nn.ReLU());
            names.Add("dropout", "Dropout", new SeededDropout(Math.Max(dropout, 0.5)));
            features = hidden;
        }
        names.Add("dense", "Dense", nn.Linear(hidden, numClasses));
        _layers = [.. names.Layers];
        foreach (var layer in _layers) register_module(layer.Name, layer.Module);
    }

    public override IReadOnlyList<NamedLayer> Layers => _layers;
    public override int InputSide { get; }
    public override int NumClasses { get; }
}
