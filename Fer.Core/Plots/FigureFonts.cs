using SkiaSharp;

namespace Fer.Core.Plots;

/// <summary>A sans typeface that exists on the machine: DejaVu/Liberation/Arial/Helvetica, else Skia's default.</summary>
internal static class FigureFonts
{
    private static readonly Lazy<SKTypeface> Regular = new(() => Find(SKFontStyle.Normal));
    private static readonly Lazy<SKTypeface> Bold = new(() => Find(SKFontStyle.Bold));

    public static SKFont Make(float size, bool bold = false) => new((bold ? Bold : Regular).Value, size);

    /// <summary>The family name of that typeface, for ScottPlot figures that should look like the SkiaSharp ones.</summary>
    public static string FamilyName => Regular.Value.FamilyName;

    private static SKTypeface Find(SKFontStyle style)
    {
        foreach (var family in new[] { "DejaVu Sans", "Liberation Sans", "Arial", "Helvetica", "Noto Sans" })
        {
            var typeface = SKTypeface.FromFamilyName(family, style);
            if (typeface is not null && typeface.GlyphCount > 0 &&
                string.Equals(typeface.FamilyName, family, StringComparison.OrdinalIgnoreCase))
                return typeface;
            typeface?.Dispose();
        }
        return SKTypeface.Default;
    }
}
