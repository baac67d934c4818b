using Fer.Core.Models;
using TorchSharp;
using static TorchSharp.torch;
using static Fer.Core.Explain.ExplainSupport;

namespace Fer.Core.Explain;

/// <summary>What one layer outputs for one image (the seed report's "Output of layer ... (Given image ...)").</summary>
public static class LayerOutputs
{
    /// <summary>
    /// The output of <paramref name="layer"/> for a [1, 1, S, S] image in eval mode, as channels*height*width values
    /// (channel-major). A dense layer's output [1, C] comes back as C channels of 1x1.
    /// </summary>
    public static float[] Capture(FerModel model, string layer, Tensor image, out int channels, out int height, out int width)
    {
        var (count, _) = CheckImages(model, image, nameof(image));
        if (count != 1) throw new ArgumentException($"expected one image [1, 1, S, S]; got {count}", nameof(image));
        using var eval = new EvalModeScope(model);
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var output = model.ForwardTo(layer, image.detach().to(ModelDevice(model)));
        switch (output.dim())
        {
            case 4: channels = (int)output.shape[1]; height = (int)output.shape[2]; width = (int)output.shape[3]; break;
            case 3: channels = (int)output.shape[1]; height = 1; width = (int)output.shape[2]; break;
            case 2: channels = (int)output.shape[1]; height = 1; width = 1; break;
            default:
                throw new ArgumentException($"layer {layer} outputs [{string.Join(", ", output.shape)}], not a per-image feature map", nameof(layer));
        }
        return ToFloats(output);
    }
}
