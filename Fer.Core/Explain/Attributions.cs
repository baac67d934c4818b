using Fer.Core.Models;
using TorchSharp;
using static TorchSharp.torch;
using static Fer.Core.Explain.ExplainSupport;

namespace Fer.Core.Explain;

/// <summary>What Integrated Gradients integrates from: a black image, the image's own mean grey, or the image
/// blurred (Gaussian, sigma = side / 12: 4 px at 48 px), which keeps the brightness layout and removes the detail.</summary>
public enum IgBaseline { Black, Mean, Blurred }

/// <summary>
/// Integrated Gradients' signed attributions (N*S*S values, not normalised) with the two scores completeness is
/// about: the target logit at the image and at its baseline. <see cref="CompletenessError"/> is
/// |sum of attributions - (score at image - score at baseline)| / |score at image - score at baseline|.
/// </summary>
public sealed record IntegratedGradientsResult(float[] Attributions, int[] TargetClasses, int Side, float[] ImageScore,
    float[] BaselineScore, int Steps, IgBaseline Baseline)
{
    public int Count => TargetClasses.Length;

    public double AttributionSum(int image)
    {
        double sum = 0;
        foreach (var v in Attributions.AsSpan(image * Side * Side, Side * Side)) sum += v;
        return sum;
    }

    public double CompletenessError(int image)
    {
        double delta = ImageScore[image] - BaselineScore[image];
        return Math.Abs(AttributionSum(image) - delta) / Math.Max(Math.Abs(delta), 1e-12);
    }
}

/// <summary>
/// The attribution methods Captum and pytorch-grad-cam users know, beside <see cref="Saliency"/>'s vanilla gradient,
/// SmoothGrad and Grad-CAM: Integrated Gradients, Guided Backpropagation, Guided Grad-CAM, Occlusion and Eigen-CAM.
/// Like <see cref="Saliency"/> they run the model in eval mode, differentiate under
/// <see cref="TorchRuntime.NativeCpuConvolutions"/>, take 0..1 images [N, 1, S, S] on any device, explain the
/// pre-softmax logit of the target class (default: the predicted class) and return maps rescaled to 0..1 per image.
/// </summary>
public static class Attributions
{
    /// <summary>Rows (images x steps, or occluded copies) per forward/backward pass; bounds memory.</summary>
    private const int RowsPerPass = 128;

    /// <summary>
    /// Integrated Gradients (Sundararajan et al. 2017): (x - x') times the mean gradient of the target logit along
    /// the straight path from the baseline x' to x, by the midpoint rule over <paramref name="steps"/> points
    /// (alpha = (k + 0.5) / steps). The points of several images go through the model together (at most 128 rows a pass).
    /// </summary>
    public static IntegratedGradientsResult IntegratedGradientsRaw(FerModel model, Tensor images, int steps = 32,
        IgBaseline baseline = IgBaseline.Black, int[]? targetClasses = null)
    {
        var (count, side) = CheckImages(model, images, nameof(images));
        if (steps < 1 || steps > 4096) throw new ArgumentOutOfRangeException(nameof(steps), "steps must be in 1..4096");
        if (targetClasses is not null) CheckTargets(model, targetClasses, count, nameof(targetClasses));
        using var eval = new EvalModeScope(model);
        var device = ModelDevice(model);
        int pixels = side * side;
        int[] targets = targetClasses ?? Saliency.Predict(model, images);
        using var outer = torch.NewDisposeScope();
        var x = images.detach().to(device);
        var reference = Baseline(x, baseline);
        var imageScore = TargetLogits(model, x, targets);
        var baselineScore = TargetLogits(model, reference, targets);
        var alphas = torch.tensor(Enumerable.Range(0, steps).Select(k => (k + 0.5) / steps).ToArray(), dtype: x.dtype, device: device)
            .view(1, steps, 1, 1, 1);

        var attributions = new float[count * pixels];
        int imagesPerPass = Math.Max(1, RowsPerPass / steps);
        for (int start = 0; start < count; start += imagesPerPass)
        {
            using var scope = torch.NewDisposeScope();
            int n = Math.Min(imagesPerPass, count - start);
            var xs = x.narrow(0, start, n).unsqueeze(1);
            var bs = reference.narrow(0, start, n).unsqueeze(1);
            var path = (bs + alphas * (xs - bs)).reshape(n * steps, 1, side, side);
            var passTargets = new int[n * steps];
            for (int i = 0; i < n; i++) Array.Fill(passTargets, targets[start + i], i * steps, steps);
            var (gradient, _) = Saliency.InputGradient(model, path, passTargets);
            var meanGradient = gradient.reshape(n, steps, 1, side, side).mean([1]);
            ToFloats(meanGradient * (xs.squeeze(1) - bs.squeeze(1))).CopyTo(attributions, start * pixels);
        }
        return new IntegratedGradientsResult(attributions, targets, side, imageScore, baselineScore, steps, baseline);
    }

    /// <summary>Integrated Gradients as a map: |attribution| rescaled to 0..1 per image (Captum's absolute-value view).</summary>
    public static SaliencyResult IntegratedGradients(FerModel model, Tensor images, int steps = 32,
        IgBaseline baseline = IgBaseline.Black, int[]? targetClasses = null)
    {
        var raw = IntegratedGradientsRaw(model, images, steps, baseline, targetClasses);
        var maps = raw.Attributions.Select(Math.Abs).ToArray();
        NormalisePerMap(maps, raw.Count, raw.Side * raw.Side);
        return new SaliencyResult(maps, raw.TargetClasses, raw.Side)
        { Method = $"Integrated Gradients ({steps} steps, {baseline.ToString().ToLowerInvariant()} baseline)" };
    }

    /// <summary>The baseline images of a batch (same shape, dtype and device).</summary>
    public static Tensor Baseline(Tensor images, IgBaseline baseline)
    {
        int side = (int)images.shape[2];
        switch (baseline)
        {
            case IgBaseline.Black: return torch.zeros_like(images);
            case IgBaseline.Mean: return images.mean([1, 2, 3], keepdim: true).expand_as(images).contiguous();
            case IgBaseline.Blurred:
                // Reflect padding needs a radius below the side: sigma = side/12 gives radius ceil(side/4).
                double sigma = Math.Max(side / 12.0, 0.2);
                using (var kernel = GaussianKernel(sigma, images.dtype, images.device))
                    return Blur(images, kernel);
            default: throw new ArgumentOutOfRangeException(nameof(baseline));
        }
    }

    /// <summary>
    /// Guided Backpropagation (Springenberg et al. 2015): the input gradient of the target logit where every ReLU
    /// passes back only positive gradients, and only where its input was positive. Computed layer by layer: each named
    /// layer is a separate graph, and the gradient arriving at a layer that ends in a ReLU (a ReLU, a conv+ReLU, or a
    /// Sequential whose last module is a ReLU) is clamped at 0 before autograd takes it through the layer (whose
    /// ReLU then applies its own input mask). ReLUs inside a layer but not at its end are treated as plain ReLUs.
    /// Returns N*S*S signed values, not normalised.
    /// </summary>
    public static float[] GuidedGradient(FerModel model, Tensor images, int[]? targetClasses = null)
    {
        var (count, _) = CheckImages(model, images, nameof(images));
        if (targetClasses is not null) CheckTargets(model, targetClasses, count, nameof(targetClasses));
        using var eval = new EvalModeScope(model);
        using var scope = torch.NewDisposeScope();
        using var gradMode = torch.enable_grad();
        using var exactGradients = TorchRuntime.NativeCpuConvolutions();
        var device = ModelDevice(model);
        var layers = model.Layers;
        var inputs = new Tensor[layers.Count];
        var outputs = new Tensor[layers.Count];
        for (int i = 0; i < layers.Count; i++)
        {
            inputs[i] = i == 0 ? images.detach().to(device).requires_grad_(true) : outputs[i - 1].detach().requires_grad_(true);
            var x = i == 0 ? model.ForwardFirst(0, inputs[i]) : inputs[i];
            outputs[i] = layers[i].Module.call(x);
        }
        var logits = outputs[^1];
        int[] targets = targetClasses ?? Saliency.ArgMax(logits);
        var index = torch.tensor(targets.Select(t => (long)t).ToArray(), device: device).unsqueeze(1);
        var gradient = torch.zeros_like(logits).scatter_(1, index, torch.ones(index.shape, dtype: logits.dtype, device: device));
        for (int i = layers.Count - 1; i >= 0; i--)
        {
            if (EndsInRelu(layers[i].Module)) gradient = gradient.clamp_min(0);
            // A layer that returns its input unchanged (eval-mode dropout, identity) passes the gradient through as is.
            if (ReferenceEquals(outputs[i], inputs[i]) || outputs[i].Handle == inputs[i].Handle) continue;
            gradient = torch.autograd.grad([outputs[i]], [inputs[i]], [gradient])[0];
        }
        return ToFloats(gradient);
    }

    /// <summary>Guided Backpropagation as a map: |guided gradient| rescaled to 0..1 per image.</summary>
    public static SaliencyResult GuidedBackprop(FerModel model, Tensor images, int[]? targetClasses = null)
    {
        var (count, side) = CheckImages(model, images, nameof(images));
        int[] targets = targetClasses ?? PredictIn(model, images);
        var maps = GuidedGradient(model, images, targets).Select(Math.Abs).ToArray();
        NormalisePerMap(maps, count, side * side);
        return new SaliencyResult(maps, targets, side) { Method = "Guided Backpropagation" };
    }

    /// <summary>Guided Grad-CAM (Selvaraju et al. 2017): |guided gradient| times the (0..1) Grad-CAM map at
    /// <paramref name="layer"/>, rescaled to 0..1 per image: fine detail where Grad-CAM says the class evidence is.</summary>
    public static SaliencyResult GuidedGradCam(FerModel model, Tensor images, string layer, int[]? targetClasses = null)
    {
        var (count, side) = CheckImages(model, images, nameof(images));
        int[] targets = targetClasses ?? PredictIn(model, images);
        var cam = Saliency.GradCam(model, images, layer, targets);
        var guided = GuidedGradient(model, images, targets);
        var maps = new float[guided.Length];
        for (int k = 0; k < maps.Length; k++) maps[k] = Math.Abs(guided[k]) * cam.Maps[k];
        NormalisePerMap(maps, count, side * side);
        return new SaliencyResult(maps, targets, side) { Method = $"Guided Grad-CAM at {layer}" };
    }

    /// <summary>
    /// Occlusion (Zeiler and Fergus 2014, Captum's Occlusion): a <paramref name="patch"/> x <paramref name="patch"/>
    /// square slides over the image with <paramref name="stride"/> (the last position is moved to touch the far edge,
    /// so every pixel is covered), is filled with the image's mean, and each pixel gets the mean drop of the target
    /// logit over the patches that cover it. The signed map is rescaled to 0..1 per image (min-max keeps its order:
    /// the pixels whose occlusion lowers the score most come first). Occluded copies are predicted in passes of 128.
    /// </summary>
    public static SaliencyResult Occlusion(FerModel model, Tensor images, int patch = 8, int stride = 4, int[]? targetClasses = null)
    {
        var (count, side) = CheckImages(model, images, nameof(images));
        if (patch < 1 || patch > side) throw new ArgumentOutOfRangeException(nameof(patch), $"patch must be in 1..{side}");
        if (stride < 1) throw new ArgumentOutOfRangeException(nameof(stride), "stride must be at least 1");
        if (targetClasses is not null) CheckTargets(model, targetClasses, count, nameof(targetClasses));
        using var eval = new EvalModeScope(model);
        int[] targets = targetClasses ?? Saliency.Predict(model, images);
        var positions = PatchPositions(side, patch, stride);
        int variants = positions.Length * positions.Length, pixels = side * side;
        var original = ToFloats(images);
        var clean = TargetLogits(model, images, targets);

        var maps = new float[count * pixels];
        var covered = new float[pixels];
        var buffer = new float[RowsPerPass * pixels];
        var rowTargets = new int[RowsPerPass];
        for (int image = 0; image < count; image++)
        {
            var source = original.AsSpan(image * pixels, pixels);
            double sum = 0;
            foreach (var v in source) sum += v;
            float fill = (float)(sum / pixels);
            var map = maps.AsSpan(image * pixels, pixels);
            Array.Clear(covered);
            for (int first = 0; first < variants; first += RowsPerPass)
            {
                int n = Math.Min(RowsPerPass, variants - first);
                for (int v = 0; v < n; v++)
                {
                    var copy = buffer.AsSpan(v * pixels, pixels);
                    source.CopyTo(copy);
                    var (top, left) = (positions[(first + v) / positions.Length], positions[(first + v) % positions.Length]);
                    for (int r = top; r < top + patch; r++) copy.Slice(r * side + left, patch).Fill(fill);
                    rowTargets[v] = targets[image];
                }
                float[] scores;
                using (var scope = torch.NewDisposeScope())
                {
                    var batch = torch.tensor(buffer.AsSpan(0, n * pixels).ToArray(), [n, 1, side, side]).to(images.dtype);
                    scores = TargetLogits(model, batch, rowTargets.AsSpan(0, n).ToArray());
                }
                for (int v = 0; v < n; v++)
                {
                    float drop = clean[image] - scores[v];
                    var (top, left) = (positions[(first + v) / positions.Length], positions[(first + v) % positions.Length]);
                    for (int r = top; r < top + patch; r++)
                        for (int c = left; c < left + patch; c++) { map[r * side + c] += drop; covered[r * side + c] += 1; }
                }
            }
            for (int k = 0; k < pixels; k++) map[k] /= covered[k];
        }
        NormalisePerMap(maps, count, pixels);
        return new SaliencyResult(maps, targets, side) { Method = $"Occlusion ({patch}x{patch} patch, stride {stride})" };
    }

    /// <summary>Top-left corners 0, stride, 2 stride, ... and side - patch, so the last patch touches the edge.</summary>
    internal static int[] PatchPositions(int side, int patch, int stride)
    {
        var positions = new List<int>();
        for (int p = 0; p + patch <= side; p += stride) positions.Add(p);
        if (positions[^1] != side - patch) positions.Add(side - patch);
        return positions.ToArray();
    }

    /// <summary>
    /// Eigen-CAM (Muhammad and Yeasin 2020): the projection of a convolutional layer's activations [K, h*w], centred
    /// over positions, on their first principal component, bilinearly upsampled and rescaled to 0..1. Needs no
    /// gradient and no class: the map is the same whichever class is explained (targets are the predicted class).
    /// The principal direction's sign is arbitrary; it is chosen so the map correlates positively with the summed
    /// activation.
    /// </summary>
    public static SaliencyResult EigenCam(FerModel model, Tensor images, string layer)
    {
        var (count, side) = CheckImages(model, images, nameof(images));
        model.LayerIndex(layer);
        using var eval = new EvalModeScope(model);
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var device = ModelDevice(model);
        var x = images.detach().to(device);
        var (activation, logits) = model.ForwardCapturing(layer, x);
        if (activation.dim() != 4)
            throw new ArgumentException(
                $"Eigen-CAM needs a layer with a spatial output [N, K, h, w]; {layer} outputs [{string.Join(", ", activation.shape)}]",
                nameof(layer));
        int[] targets = Saliency.ArgMax(logits);
        long k = activation.shape[1], h = activation.shape[2], w = activation.shape[3];
        var positions = activation.to(ScalarType.Float32).cpu().reshape(count, k, h * w).transpose(1, 2); // [N, hw, K]
        var centred = positions - positions.mean([1], keepdim: true);
        var (_, _, vh) = torch.linalg.svd(centred, fullMatrices: false);
        var projection = torch.bmm(centred, vh.narrow(1, 0, 1).transpose(1, 2)).squeeze(2); // [N, hw]
        var summed = centred.sum(2);
        var sign = (projection * summed).sum(1, keepdim: true).sign();
        sign = torch.where(sign.eq(0), torch.ones_like(sign), sign);
        var cam = (projection * sign).reshape(count, 1, h, w);
        var upsampled = UpsampleToInput(cam, side, model.CropMargin);
        var maps = ToFloats(upsampled);
        NormalisePerMap(maps, count, side * side);
        return new SaliencyResult(maps, targets, side) { Method = $"Eigen-CAM at {layer}" };
    }

    /// <summary>Whether a layer's last operation is a ReLU (guided backpropagation's clamp point).</summary>
    internal static bool EndsInRelu(nn.Module module) => module switch
    {
        TorchSharp.Modules.ReLU => true,
        Conv2dRelu => true,
        TorchSharp.Modules.Sequential sequential => sequential.children().LastOrDefault() is { } last && EndsInRelu(last),
        _ => false,
    };

    private static int[] PredictIn(FerModel model, Tensor images)
    {
        using var eval = new EvalModeScope(model);
        return Saliency.Predict(model, images);
    }
}
