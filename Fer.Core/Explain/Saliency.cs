using Fer.Core.Models;
using TorchSharp;
using static TorchSharp.torch;
using static Fer.Core.Explain.ExplainSupport;

namespace Fer.Core.Explain;

/// <summary>
/// Per-pixel relevance maps for a batch of images. <see cref="Maps"/> holds N maps of Side*Side values in
/// row-major order, each rescaled to 0..1 on its own (min-max), so maps of different images are comparable in
/// shape, not in absolute size. <see cref="TargetClasses"/> is the class each map explains.
/// </summary>
public sealed record SaliencyResult(float[] Maps, int[] TargetClasses, int Side)
{
    /// <summary>How the maps were made, for figure titles ("Vanilla gradient", "Grad-CAM at conv2d_6", ...).</summary>
    public string Method { get; init; } = "Saliency";

    public int Count => TargetClasses.Length;

    public ReadOnlySpan<float> Map(int image) => Maps.AsSpan(image * Side * Side, Side * Side);
}

/// <summary>
/// Gradient-based explanations as Captum (Saliency, NoiseTunnel/SmoothGrad, LayerGradCam) and keras-vis
/// (visualize_saliency, visualize_cam) compute them. All run the model in eval mode (dropout off), restore its
/// previous training mode, and differentiate with autograd.grad with respect to the input (or the captured layer)
/// only, so no .grad is left on the parameters. Images are 0..1 [N, 1, S, S]; they are moved to the model's device.
/// </summary>
public static class Saliency
{
    /// <summary>Rows (images x noise samples) per forward/backward in SmoothGrad; bounds its memory.</summary>
    private const int SmoothGradRowsPerPass = 128;

    /// <summary>
    /// Vanilla gradient saliency (Simonyan et al. 2014): |d logit_target / d pixel|. The target defaults to the
    /// predicted class. One forward and one backward for the whole batch: the selected logits are summed, and since
    /// in eval mode every image's logit depends only on that image, the gradient of the sum is each image's own.
    /// The score differentiated is the pre-softmax logit (as Captum and keras-vis with a linear last layer do):
    /// the gradient of a saturated softmax vanishes.
    /// </summary>
    public static SaliencyResult Vanilla(FerModel model, Tensor images, int[]? targetClasses = null)
    {
        var (count, side) = CheckImages(model, images, nameof(images));
        if (targetClasses is not null) CheckTargets(model, targetClasses, count, nameof(targetClasses));
        using var eval = new EvalModeScope(model);
        using var scope = torch.NewDisposeScope();
        var (gradient, targets) = InputGradient(model, images, targetClasses);
        var maps = ToFloats(gradient.abs());
        NormalisePerMap(maps, count, side * side);
        return new SaliencyResult(maps, targets, side) { Method = "Vanilla gradient" };
    }

    /// <summary>
    /// SmoothGrad (Smilkov et al. 2017): the mean of |gradient| over <paramref name="samples"/> copies of each image
    /// with Gaussian noise of standard deviation <paramref name="noiseStd"/> x (max - min of that image), i.e. the
    /// paper's noise level relative to the input range. The target defaults to the class predicted on the clean image.
    /// Noisy copies are evaluated together (at most 128 rows per pass). The noise of image i depends only on
    /// (seed, i), so the result does not depend on how images are grouped into passes.
    /// </summary>
    public static SaliencyResult SmoothGrad(FerModel model, Tensor images, int samples = 25, double noiseStd = 0.15,
        long seed = 0, int[]? targetClasses = null)
    {
        var (count, side) = CheckImages(model, images, nameof(images));
        if (samples < 1) throw new ArgumentOutOfRangeException(nameof(samples), "samples must be at least 1");
        if (!(noiseStd >= 0)) throw new ArgumentOutOfRangeException(nameof(noiseStd), "noiseStd must be >= 0");
        if (targetClasses is not null) CheckTargets(model, targetClasses, count, nameof(targetClasses));
        using var eval = new EvalModeScope(model);
        var device = ModelDevice(model);
        int pixels = side * side;
        int[] targets = targetClasses ?? Predict(model, images);

        float[] ranges;
        using (torch.NewDisposeScope())
        {
            var flat = images.detach().reshape(count, pixels);
            ranges = ToFloats(flat.amax([1]) - flat.amin([1]));
        }

        var maps = new float[count * pixels];
        int imagesPerPass = Math.Max(1, SmoothGradRowsPerPass / samples);
        for (int start = 0; start < count; start += imagesPerPass)
        {
            using var scope = torch.NewDisposeScope();
            int passImages = Math.Min(imagesPerPass, count - start);
            var noisy = new List<Tensor>(passImages);
            var passTargets = new int[passImages * samples];
            for (int i = 0; i < passImages; i++)
            {
                int image = start + i;
                // Noise is drawn on the CPU from a generator seeded by (seed, image), so it is the same on every device.
                var generator = new torch.Generator(Mix(seed, image), torch.CPU);
                var noise = torch.randn([samples, 1, side, side], generator: generator)
                    .mul(noiseStd * ranges[image]).to(images.dtype).to(device);
                var clean = images[image].unsqueeze(0).detach().to(device);
                noisy.Add(clean.expand(samples, 1, side, side) + noise);
                Array.Fill(passTargets, targets[image], i * samples, samples);
            }
            var (gradient, _) = InputGradient(model, torch.cat(noisy, 0), passTargets);
            var mean = gradient.abs().reshape(passImages, samples, pixels).mean([1]);
            ToFloats(mean).CopyTo(maps, start * pixels);
        }
        NormalisePerMap(maps, count, pixels);
        return new SaliencyResult(maps, targets, side)
        { Method = $"SmoothGrad ({samples} samples, noise {noiseStd:0.##})" };
    }

    /// <summary>
    /// Grad-CAM (Selvaraju et al. 2017) at a convolutional layer with output A [N, K, h, w]:
    /// ReLU(sum_k alpha_k A_k) with alpha_k the spatial mean of d logit_target / d A_k, bilinearly upsampled to the
    /// input size and rescaled to 0..1 per image. One forward and one backward for the batch.
    /// </summary>
    public static SaliencyResult GradCam(FerModel model, Tensor images, string layer, int[]? targetClasses = null)
    {
        var (count, side) = CheckImages(model, images, nameof(images));
        model.LayerIndex(layer); // an unknown name fails here, listing the valid ones
        if (targetClasses is not null) CheckTargets(model, targetClasses, count, nameof(targetClasses));
        using var eval = new EvalModeScope(model);
        using var scope = torch.NewDisposeScope();
        using var gradMode = torch.enable_grad();
        using var exactGradients = TorchRuntime.NativeCpuConvolutions();
        var device = ModelDevice(model);
        // The input requires grad so the captured activation does even when the parameters are frozen.
        var input = images.detach().to(device).requires_grad_(true);
        var (activation, logits) = model.ForwardCapturing(layer, input);
        if (activation.dim() != 4)
            throw new ArgumentException(
                $"Grad-CAM needs a layer with a spatial output [N, K, h, w]; {layer} outputs [{string.Join(", ", activation.shape)}]",
                nameof(layer));
        int[] targets = targetClasses ?? ArgMax(logits);
        var score = SelectedLogitSum(logits, targets);
        var activationGradient = torch.autograd.grad([score], [activation])[0];
        var weights = activationGradient.mean([2, 3], keepdim: true);
        var cam = torch.nn.functional.relu((weights * activation).sum(1, keepdim: true));
        var upsampled = UpsampleToInput(cam, side, model.CropMargin);
        var maps = ToFloats(upsampled);
        NormalisePerMap(maps, count, side * side);
        return new SaliencyResult(maps, targets, side) { Method = $"Grad-CAM at {layer}" };
    }

    /// <summary>The signed gradient d logit_target / d pixel, N*S*S values (not normalised); one backward for the batch.</summary>
    public static float[] RawGradient(FerModel model, Tensor images, int[] targetClasses)
    {
        var (count, _) = CheckImages(model, images, nameof(images));
        CheckTargets(model, targetClasses, count, nameof(targetClasses));
        using var eval = new EvalModeScope(model);
        using var scope = torch.NewDisposeScope();
        var (gradient, _) = InputGradient(model, images, targetClasses);
        return ToFloats(gradient);
    }

    /// <summary>The predicted class of each image (eval mode is the caller's business).</summary>
    internal static int[] Predict(FerModel model, Tensor images)
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        return ArgMax(model.call(images.detach().to(ModelDevice(model))));
    }

    internal static (Tensor Gradient, int[] Targets) InputGradient(FerModel model, Tensor images, int[]? targetClasses)
    {
        using var gradMode = torch.enable_grad();
        using var exactGradients = TorchRuntime.NativeCpuConvolutions(); // oneDNN's input gradients: see TorchRuntime
        var device = ModelDevice(model);
        var input = images.detach().to(device).requires_grad_(true);
        var logits = model.call(input);
        int[] targets = targetClasses ?? ArgMax(logits);
        var score = SelectedLogitSum(logits, targets);
        return (torch.autograd.grad([score], [input])[0], targets);
    }

    internal static Tensor SelectedLogitSum(Tensor logits, int[] targets)
    {
        var index = torch.tensor(targets.Select(t => (long)t).ToArray(), device: logits.device).unsqueeze(1);
        return logits.gather(1, index).sum();
    }

    internal static int[] ArgMax(Tensor logits)
    {
        using var scope = torch.NewDisposeScope();
        return logits.detach().argmax(1).cpu().data<long>().Select(v => (int)v).ToArray();
    }
}
