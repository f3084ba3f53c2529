using System.Globalization;

namespace Irr.Eval.Report;

/// <summary>One point of a <see cref="Charts.ScatterChart"/>: a label and two fractions in [0, 1] (shown as percent).</summary>
/// <param name="Label">The text next to the point (a model's label).</param>
/// <param name="X">The x value, a fraction (e.g. a harmful rate); lower is better for the Pareto front.</param>
/// <param name="Y">The y value, a fraction (e.g. a task accuracy); higher is better for the Pareto front.</param>
public sealed record ScatterPoint(string Label, double X, double Y)
{
    /// <summary>The 95% interval of <see cref="X"/> (fractions), drawn as a horizontal error bar; null for none.</summary>
    public Interval? XInterval { get; init; }

    /// <summary>The 95% interval of <see cref="Y"/> (fractions), drawn as a vertical error bar; null for none.</summary>
    public Interval? YInterval { get; init; }

    /// <summary>The point's colour (its model's, <see cref="Charts.ModelColours"/>); null for the chart's default.</summary>
    public string? Colour { get; init; }
}

/// <summary>A named series of a <see cref="Charts.SeriesChart"/>.</summary>
/// <param name="Name">The legend's text for it.</param>
/// <param name="Points">Its points (fractions in [0, 1]), in the order a line joins them.</param>
/// <param name="Connected">True: a curve, its points joined by a line in order; false: points standing alone (reference models).</param>
/// <param name="Highlight">The index of a point to ring (a chosen one), or null.</param>
public sealed record ChartSeries(string Name, IReadOnlyList<ScatterPoint> Points, bool Connected = true, int? Highlight = null)
{
    /// <summary>The series' colour; null for the palette's colour at the series' index. θ_A and θ_F take <see cref="Charts.AlignedColour"/> and <see cref="Charts.FinetunedColour"/>.</summary>
    public string? Colour { get; init; }
}

/// <summary>
/// The two charts of the comparison report as standalone SVG documents: a grouped bar chart and a
/// scatter plot with its Pareto front. Values are fractions in [0, 1] drawn on percent axes (0–100).
/// Elements carry classes for styling and checking: <c>bar</c> (with <c>data-group</c>,
/// <c>data-series</c>), <c>tick-x</c>/<c>tick-y</c> labels placed exactly at their tick,
/// <c>legend-label</c>, <c>group-label</c>, <c>point</c>/<c>point pareto</c> (with <c>data-label</c>),
/// <c>point-label</c>, <c>pareto-front</c>.
/// </summary>
public static class Charts
{
    /// <summary>The Okabe-Ito colour-blind-safe palette (without its black), in the order series use it.</summary>
    public static IReadOnlyList<string> Palette { get; } = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#56B4E9", "#CC79A7", "#F0E442"];

    private const double Left = 70, Right = 24, TitleY = 26, LegendTop = 44, LegendRow = 20;
    private const double FontSize = 13, SmallFont = 11;

    /// <summary>The width of the bar charts (their viewBox and their width attribute): the report page's content width, so that they are drawn at 1:1 and their 11–16 px text stays that size.</summary>
    public const double DisplayWidth = 880;

    /// <summary>θ_A's colour in every chart (the aligned model: a label <c>aligned</c> or starting with θ_A).</summary>
    public const string AlignedColour = "#009E73";

    /// <summary>θ_F's colour in every chart (the fine-tuned model: a label ending in <c>finetuned</c> or starting with θ_F).</summary>
    public const string FinetunedColour = "#D55E00";

    // The palette without θ_A's and θ_F's colours, for the other models, with a few more for long lists.
    private static readonly string[] OtherColours = ["#0072B2", "#E69F00", "#CC79A7", "#56B4E9", "#7F7F7F", "#332288", "#882255", "#44AA99", "#999933", "#AA4499", "#117733", "#661100"];

    /// <summary>
    /// One colour per model for all charts of a report: θ_A (<c>aligned</c>, <c>θ_A…</c>) always <see cref="AlignedColour"/>,
    /// θ_F (<c>…finetuned</c>, <c>θ_F…</c>) always <see cref="FinetunedColour"/>, the others the remaining colours in order (after
    /// the twelfth, the same colours a shade darker: 70% of each channel).
    /// </summary>
    public static IReadOnlyDictionary<string, string> ModelColours(IReadOnlyList<string> labels)
    {
        var colours = new Dictionary<string, string>(StringComparer.Ordinal);
        int next = 0;
        foreach (string label in labels)
        {
            // A second θ_A or θ_F (the demo's LoRA fine-tune beside its full one) takes a darker shade of the same colour.
            string? fixedColour = FixedColour(label);
            colours[label] = fixedColour is null ? Other(next++)
                : colours.Values.Contains(fixedColour) ? Darker(fixedColour) : fixedColour;
        }
        return colours;
    }

    // The n-th other model's colour: the list in order, then, for a longer list (the demo's 18 other models), the list
    // again a shade darker each round, so that no two models of a report share a colour.
    private static string Other(int n)
    {
        string colour = OtherColours[n % OtherColours.Length];
        for (int round = 0; round < n / OtherColours.Length; round++) colour = Darker(colour);
        return colour;
    }

    /// <summary>θ_A's or θ_F's colour when <paramref name="label"/> names one of them, else null.</summary>
    public static string? FixedColour(string label) =>
        label == "aligned" || label.StartsWith("θ_A", StringComparison.Ordinal) ? AlignedColour
        : label.EndsWith("finetuned", StringComparison.Ordinal) || label.StartsWith("θ_F", StringComparison.Ordinal) ? FinetunedColour
        : null;

    /// <summary>
    /// "Nice" tick values covering [<paramref name="min"/>, <paramref name="max"/>]: the step is the
    /// smallest number 1, 2 or 5 × 10^k for which floor(min/step)·step … ceil(max/step)·step takes at most
    /// <paramref name="maxIntervals"/> steps; the ticks are those multiples of the step, in order. When
    /// min equals max the range [min, min + 1] is used.
    /// </summary>
    public static IReadOnlyList<double> NiceTicks(double min, double max, int maxIntervals = 10)
    {
        if (!double.IsFinite(min) || !double.IsFinite(max) || min > max) throw new ArgumentException($"bad axis range [{min}, {max}]");
        if (maxIntervals < 1) throw new ArgumentOutOfRangeException(nameof(maxIntervals));
        if (min == max) max = min + 1;
        const double eps = 1e-9;
        int k = (int)Math.Floor(Math.Log10((max - min) / maxIntervals)) - 1;
        while (true)
        {
            foreach (int m in (int[])[1, 2, 5])
            {
                double step = Scaled(m, k);
                long first = (long)Math.Floor(min / step + eps), last = (long)Math.Ceiling(max / step - eps);
                if (last - first <= maxIntervals)
                {
                    var ticks = new double[last - first + 1];
                    for (long i = first; i <= last; i++) ticks[i - first] = Scaled(i * m, k);
                    return ticks;
                }
            }
            k++;
        }
    }

    // n × 10^k, exactly rounded (division by an exact power of ten for negative k).
    private static double Scaled(long n, int k) => k >= 0 ? n * Math.Pow(10, k) : n / Math.Pow(10, -k);

    /// <summary>
    /// The indices of the points on the Pareto front, in input order: a point is on the front when no other
    /// point has both X ≤ its X and Y ≥ its Y with at least one of the two strict. Equal points are
    /// therefore either all on the front or all off it.
    /// </summary>
    public static IReadOnlyList<int> ParetoFront(IReadOnlyList<ScatterPoint> points)
    {
        var front = new List<int>();
        for (int i = 0; i < points.Count; i++)
        {
            var p = points[i];
            bool dominated = points.Any(q => q.X <= p.X && q.Y >= p.Y && (q.X < p.X || q.Y > p.Y));
            if (!dominated) front.Add(i);
        }
        return front;
    }

    /// <summary>
    /// A grouped bar chart, <see cref="DisplayWidth"/> wide: one group per entry of <paramref name="groups"/> (e.g. prompt sets)
    /// with one bar per entry of <paramref name="series"/> (e.g. models), heights <c>values[g][s]</c> as fractions on a
    /// 0–100 % axis; a null value draws "n/a" instead of a bar. <paramref name="intervals"/> (<c>[g][s]</c>, fractions) draw
    /// as error bars (class <c>error-bar</c>). Each bar carries its value: above it when it fits across, else turned upright
    /// (above the bar, or inside it in white when the bar reaches the top). The legend names the series, coloured by
    /// <paramref name="seriesColours"/> (default: the palette in order). With <paramref name="skipMissing"/> a group's bars are
    /// only those with a value, side by side and centred (no "n/a" gaps: for series most groups lack, such as models under attacks).
    /// </summary>
    public static string GroupedBarChart(string title, IReadOnlyList<string> groups, IReadOnlyList<string> series,
        IReadOnlyList<IReadOnlyList<double?>> values, string yTitle, string xTitle,
        IReadOnlyList<IReadOnlyList<Interval?>>? intervals = null, IReadOnlyList<string>? seriesColours = null, bool skipMissing = false)
    {
        if (groups.Count == 0 || series.Count == 0) throw new ArgumentException("a bar chart needs at least one group and one series");
        if (values.Count != groups.Count || values.Any(v => v.Count != series.Count)) throw new ArgumentException("values must be groups × series");
        if (intervals is not null && (intervals.Count != groups.Count || intervals.Any(v => v.Count != series.Count))) throw new ArgumentException("intervals must be groups × series");
        if (seriesColours is not null && seriesColours.Count != series.Count) throw new ArgumentException("one colour per series");
        string ColourOf(int s) => seriesColours?[s] ?? Palette[s % Palette.Count];

        double width = DisplayWidth;
        double groupWidth = (width - Left - Right) / groups.Count;
        var (labelLines, rotate) = WrapGroupLabels(groups, groupWidth - 8);
        // Rotated labels run down to the left of their group's centre: the first ones may need a wider margin.
        double left = Left;
        if (rotate)
            for (int g = 0; g < groups.Count; g++)
                left = Math.Max(left, Svg.TextWidth(groups[g], FontSize) * Math.Cos(35 * Math.PI / 180) - (g + 0.5) * groupWidth + 8);
        double plotWidth = width - left - Right;
        groupWidth = plotWidth / groups.Count;
        int slots = skipMissing ? Math.Max(1, values.Max(v => v.Count(x => x is not null))) : series.Count;
        double barWidth = groupWidth * 0.8 / slots;

        var legend = LegendLayout(series.Select((n, s) => (n, Swatch.Box, (string?)ColourOf(s))).ToList(), left, width);
        double plotTop = LegendTop + legend.Rows * LegendRow + 18;
        const double plotHeight = 320;
        double plotBottom = plotTop + plotHeight;

        double labelsHeight = rotate
            ? groups.Max(g => Svg.TextWidth(g, FontSize)) * Math.Sin(35 * Math.PI / 180) + 24
            : labelLines.Max(l => l.Count) * 15 + 12;
        double height = plotBottom + labelsHeight + 34;

        var svg = Svg.Root(width, height);
        svg.Add(Svg.Text(width / 2, TitleY, title, "middle")).Attr("font-size", 16).Attr("font-weight", "bold").Attr("class", "title");
        DrawLegend(svg, legend, LegendTop);

        Func<double, double> y = v => plotBottom - v / 100 * plotHeight;
        DrawYAxis(svg, left, plotTop, plotBottom, y, left + plotWidth, yTitle);

        for (int g = 0; g < groups.Count; g++)
        {
            double groupLeft = left + g * groupWidth;
            int shown = values[g].Count(v => v is not null), slot = 0;
            double first = skipMissing ? groupLeft + (groupWidth - shown * barWidth) / 2 : groupLeft + groupWidth * 0.1;
            for (int s = 0; s < series.Count; s++)
            {
                if (skipMissing && values[g][s] is null) continue;
                double x = first + (skipMissing ? slot++ : s) * barWidth, centre = x + barWidth / 2;
                if (values[g][s] is not { } v)
                {
                    // "n/a" where it fits the bar's width; a narrower slot stays empty (the legend's colours tell whose it is).
                    if (Svg.TextWidth("n/a", SmallFont) <= barWidth + 2)
                        svg.Add(Svg.Text(centre, plotBottom - 4, "n/a", "middle")).Attr("font-size", SmallFont).Attr("fill", "#777").Attr("class", "missing");
                    continue;
                }
                double percent = v * 100, top = y(percent);
                var bar = svg.Add("rect").Attr("class", "bar").Attr("data-group", groups[g]).Attr("data-series", series[s])
                    .Attr("x", x + 1).Attr("y", top).Attr("width", Math.Max(1, barWidth - 2)).Attr("height", plotBottom - top)
                    .Attr("fill", ColourOf(s));
                var interval = intervals?[g][s];
                bar.Add("title").Text($"{series[s]} · {groups[g]}: {Percent(percent)}" + (interval is { } i ? $" (95% CI {Percent(i.Low * 100)}–{Percent(i.High * 100)})" : ""));
                double above = top;
                if (interval is { } ci)
                {
                    above = Math.Min(top, y(ci.High * 100));
                    DrawErrorBar(svg, centre, y(ci.Low * 100), y(ci.High * 100), Math.Min(6, barWidth / 3), vertical: true);
                }
                DrawValueLabel(svg, Percent(percent), centre, barWidth, above, top, plotTop, plotBottom);
            }
            double center = groupLeft + groupWidth / 2;
            if (rotate)
            {
                svg.Add(Svg.Text(center, plotBottom + 16, groups[g], "end"))
                    .Attr("transform", $"rotate(-35 {Svg.Num(center)} {Svg.Num(plotBottom + 16)})").Attr("class", "group-label");
            }
            else
            {
                var text = svg.Add(Svg.Text(center, plotBottom + 18, "", "middle")).Attr("class", "group-label");
                if (labelLines[g].Count == 1) text.Text(labelLines[g][0]);
                else
                    for (int i = 0; i < labelLines[g].Count; i++)
                        text.Add("tspan").Attr("x", center).Attr("dy", i == 0 ? 0 : 15).Text(labelLines[g][i]);
            }
        }
        svg.Add(Svg.Line(left, plotBottom, left + plotWidth, plotBottom, "#333"));
        svg.Add(Svg.Text(left + plotWidth / 2, height - 12, xTitle, "middle")).Attr("class", "axis-title");
        return svg.ToString();
    }

    // A bar's value (class value): across above the bar (and its error bar) when it fits the bar's width; else upright,
    // above when there is room below the plot's top, else inside the bar's top in white.
    private static void DrawValueLabel(SvgElement svg, string value, double centre, double barWidth, double above, double top, double plotTop, double plotBottom)
    {
        double w = Svg.TextWidth(value, SmallFont);
        if (w <= barWidth + 2)
        {
            svg.Add(Svg.Text(centre, above - 4, value, "middle")).Attr("font-size", SmallFont).Attr("class", "value");
            return;
        }
        bool inside = above - 4 - w < plotTop - 12 && plotBottom - top >= w + 8;
        double baseline = inside ? top + 4 : above - 4;
        string anchor = inside ? "end" : "start";
        var text = svg.Add(Svg.Text(centre, baseline, value, anchor)).Attr("font-size", SmallFont).Attr("class", "value")
            .Attr("dominant-baseline", "middle").Attr("transform", $"rotate(-90 {Svg.Num(centre)} {Svg.Num(baseline)})");
        if (inside) text.Attr("fill", "#fff");
    }

    // An error bar from a to b (pixels along the bar's axis) at c on the other axis, with caps of half-width cap (class error-bar).
    private static void DrawErrorBar(SvgElement svg, double c, double a, double b, double cap, bool vertical)
    {
        var group = svg.Add("g").Attr("class", "error-bar").Attr("stroke", "#222").Attr("stroke-width", 1.3);
        (double, double) P(double along, double across) => vertical ? (across, along) : (along, across);
        void Segment((double X, double Y) p, (double X, double Y) q) => group.Add("line").Attr("x1", p.X).Attr("y1", p.Y).Attr("x2", q.X).Attr("y2", q.Y);
        Segment(P(a, c), P(b, c));
        Segment(P(a, c - cap), P(a, c + cap));
        Segment(P(b, c - cap), P(b, c + cap));
    }

    /// <summary>
    /// A scatter plot of <paramref name="points"/> (fractions on 0–100 % axes), each point labelled, with
    /// the <see cref="ParetoFront"/> (low X, high Y) drawn as a step line through its points and its
    /// points filled; the other points are hollow.
    /// </summary>
    public static string ScatterChart(string title, IReadOnlyList<ScatterPoint> points, string xTitle, string yTitle)
    {
        if (points.Count == 0) throw new ArgumentException("a scatter chart needs at least one point");
        var (svg, x, y, plot) = PlotFrame(title, [("on the Pareto front", Swatch.Front, null), ("dominated", Swatch.Dominated, null), ("Pareto front", Swatch.Step, null)], xTitle, yTitle);

        var front = ParetoFront(points).ToHashSet();
        // Points at the same place share one label, "a, b, c", on the first of them.
        var labelled = points.Select((p, i) => points.Take(i).Any(q => q.X == p.X && q.Y == p.Y) ? p with { Label = "" }
            : p with { Label = string.Join(", ", points.Where(q => q.X == p.X && q.Y == p.Y).Select(q => q.Label)) }).ToList();
        var px = points.Select(p => x(p.X * 100)).ToArray();
        var py = points.Select(p => y(p.Y * 100)).ToArray();
        var steps = front.OrderBy(i => points[i].X).ThenBy(i => points[i].Y).ToList();
        var path = new System.Text.StringBuilder($"M {Svg.Num(px[steps[0]])} {Svg.Num(py[steps[0]])}");
        var obstacles = new List<(double X0, double Y0, double X1, double Y1)>();
        for (int j = 1; j < steps.Count; j++)
        {
            int a = steps[j - 1], b = steps[j];
            path.Append($" H {Svg.Num(px[b])} V {Svg.Num(py[b])}");
            obstacles.Add((px[a], py[a] - 2, px[b], py[a] + 2));
            obstacles.Add((px[b] - 2, Math.Min(py[a], py[b]), px[b] + 2, Math.Max(py[a], py[b])));
        }
        if (steps.Count > 1)
            svg.Add("path").Attr("class", "pareto-front").Attr("d", path.ToString()).Attr("fill", "none")
                .Attr("stroke", "#333").Attr("stroke-width", 2).Attr("stroke-dasharray", "6 4");

        for (int i = 0; i < points.Count; i++) DrawErrorBars(svg, points[i], px[i], py[i], x, y, obstacles);
        for (int i = 0; i < points.Count; i++)
        {
            bool onFront = front.Contains(i);
            string colour = points[i].Colour ?? (onFront ? Palette[3] : Palette[0]);
            var circle = svg.Add("circle").Attr("class", onFront ? "point pareto" : "point").Attr("data-label", points[i].Label)
                .Attr("cx", px[i]).Attr("cy", py[i]).Attr("r", onFront ? 6 : 5)
                .Attr("fill", onFront ? colour : "#fff").Attr("stroke", onFront ? "#000" : colour).Attr("stroke-width", onFront ? 1 : 2);
            circle.Add("title").Text($"{points[i].Label}: {xTitle} {Percent(points[i].X * 100)}, {yTitle} {Percent(points[i].Y * 100)}");
        }
        PlacePointLabels(svg, labelled, px, py, obstacles, plot, labelled.Select(p => p.Colour is { } c && p.Label.Contains(", ") == false ? Darker(c) : "#222").ToList());
        return svg.ToString();
    }

    /// <summary>
    /// A scatter plot by series on 0–100 % axes (values are fractions): each series in its palette colour, its points joined
    /// in the given order when it is <see cref="ChartSeries.Connected"/> (a curve: circles, class <c>series-line</c> for the
    /// line) or standing alone (reference models: squares), every point with a label labelled; a series'
    /// <see cref="ChartSeries.Highlight"/> point is ringed (class <c>highlight</c>). The legend names the series.
    /// </summary>
    /// <exception cref="ArgumentException">No series has a point.</exception>
    public static string SeriesChart(string title, IReadOnlyList<ChartSeries> series, string xTitle, string yTitle)
    {
        var points = series.SelectMany(s => s.Points).ToList();
        if (points.Count == 0) throw new ArgumentException("a series chart needs at least one point");
        var (svg, x, y, plot) = PlotFrame(title, series.Select((s, i) => (s.Name, s.Connected ? Swatch.Curve : Swatch.Square, (string?)ColourOf(s, i))).ToList(), xTitle, yTitle);
        var px = points.Select(p => x(p.X * 100)).ToArray();
        var py = points.Select(p => y(p.Y * 100)).ToArray();
        var obstacles = new List<(double X0, double Y0, double X1, double Y1)>();
        var starts = series.Select((_, s) => series.Take(s).Sum(c => c.Points.Count)).ToList();
        for (int i = 0; i < points.Count; i++) DrawErrorBars(svg, points[i], px[i], py[i], x, y, obstacles);
        // Reference squares first, then the curves: a curve's point that coincides with a reference (a baseline at
        // the setting that changes nothing, on θ_F) stays visible on top of its square.
        foreach (int s in Enumerable.Range(0, series.Count).OrderBy(s => series[s].Connected ? 1 : 0))
        {
            string colour = ColourOf(series[s], s);
            int n = series[s].Points.Count, first = starts[s];
            if (series[s].Connected && n > 1)
            {
                var path = new System.Text.StringBuilder($"M {Svg.Num(px[first])} {Svg.Num(py[first])}");
                for (int i = first + 1; i < first + n; i++)
                {
                    path.Append($" L {Svg.Num(px[i])} {Svg.Num(py[i])}");
                    obstacles.Add((Math.Min(px[i - 1], px[i]), Math.Min(py[i - 1], py[i]), Math.Max(px[i - 1], px[i]), Math.Max(py[i - 1], py[i])));
                }
                svg.Add("path").Attr("class", "series-line").Attr("data-series", series[s].Name).Attr("d", path.ToString())
                    .Attr("fill", "none").Attr("stroke", colour).Attr("stroke-width", 2);
            }
            for (int i = first; i < first + n; i++)
            {
                var mark = series[s].Connected
                    ? svg.Add("circle").Attr("cx", px[i]).Attr("cy", py[i]).Attr("r", 5)
                    : svg.Add("rect").Attr("x", px[i] - 5).Attr("y", py[i] - 5).Attr("width", 10).Attr("height", 10);
                mark.Attr("class", "point").Attr("data-series", series[s].Name).Attr("data-label", points[i].Label)
                    .Attr("fill", colour).Attr("stroke", "#000").Attr("stroke-width", 1);
                mark.Add("title").Text($"{points[i].Label} ({series[s].Name}): {xTitle} {Percent(points[i].X * 100)}, {yTitle} {Percent(points[i].Y * 100)}");
                if (i - first == series[s].Highlight)
                    svg.Add("circle").Attr("class", "highlight").Attr("data-label", points[i].Label).Attr("cx", px[i]).Attr("cy", py[i]).Attr("r", 10)
                        .Attr("fill", "none").Attr("stroke", "#000").Attr("stroke-width", 2);
            }
        }
        var colours = series.SelectMany((c, s) => c.Points.Select(_ => Darker(ColourOf(c, s)))).ToList();
        PlacePointLabels(svg, points, px, py, obstacles, plot, colours);
        return svg.ToString();
    }

    // A series' colour: its own, θ_A's or θ_F's by its name, else the palette's at its index.
    // The others take the colours θ_A and θ_F do not use, so that no curve looks like θ_A or θ_F.
    private static string ColourOf(ChartSeries series, int index) => series.Colour ?? FixedColour(series.Name) ?? OtherColours[index % OtherColours.Length];

    // A darker shade of a colour (#RRGGBB × 0.7), for text in a series' colour (readable on white).
    private static string Darker(string colour)
    {
        if (colour.Length != 7 || colour[0] != '#') return colour;
        int Channel(int i) => (int)(Convert.ToInt32(colour.Substring(i, 2), 16) * 0.7);
        return $"#{Channel(1):X2}{Channel(3):X2}{Channel(5):X2}";
    }

    // A point's error bars: horizontal over its X interval, vertical over its Y interval (fractions; x and y map percent to pixels).
    // They are obstacles for the labels (added to obstacles).
    private static void DrawErrorBars(SvgElement svg, ScatterPoint point, double px, double py, Func<double, double> x, Func<double, double> y,
        List<(double X0, double Y0, double X1, double Y1)> obstacles)
    {
        if (point.XInterval is { } xi)
        {
            DrawErrorBar(svg, py, x(xi.Low * 100), x(xi.High * 100), 4, vertical: false);
            obstacles.Add((x(xi.Low * 100), py - 4, x(xi.High * 100), py + 4));
        }
        if (point.YInterval is { } yi)
        {
            DrawErrorBar(svg, px, y(yi.Low * 100), y(yi.High * 100), 4, vertical: true);
            obstacles.Add((px - 4, y(yi.High * 100), px + 4, y(yi.Low * 100)));
        }
    }

    // The frame of a scatter plot: title, legend, both percent axes with their grids and titles; returns the
    // document, the maps from percent to pixels and the plot's box.
    private static (SvgElement Svg, Func<double, double> X, Func<double, double> Y, (double Left, double Top, double Right, double Bottom) Plot) PlotFrame(
        string title, IReadOnlyList<(string Text, Swatch Swatch, string? Colour)> legendEntries, string xTitle, string yTitle)
    {
        const double plotWidth = 620, plotHeight = 440;
        double width = Left + plotWidth + Right;
        var legend = LegendLayout(legendEntries, Left, width);
        double plotTop = LegendTop + legend.Rows * LegendRow + 12, plotBottom = plotTop + plotHeight, plotRight = Left + plotWidth;
        double height = plotBottom + 58;

        var svg = Svg.Root(width, height);
        svg.Add(Svg.Text(width / 2, TitleY, title, "middle")).Attr("font-size", 16).Attr("font-weight", "bold").Attr("class", "title");
        DrawLegend(svg, legend, LegendTop);

        Func<double, double> x = v => Left + v / 100 * plotWidth;
        Func<double, double> y = v => plotBottom - v / 100 * plotHeight;
        DrawYAxis(svg, Left, plotTop, plotBottom, y, plotRight, yTitle);
        foreach (double t in NiceTicks(0, 100))
        {
            svg.Add(Svg.Line(x(t), plotTop, x(t), plotBottom, t == 0 ? "#333" : "#e3e3e3"));
            svg.Add(Svg.Text(x(t), plotBottom + 8, Tick(t), "middle")).Attr("dominant-baseline", "hanging").Attr("class", "tick-x");
        }
        svg.Add(Svg.Line(Left, plotBottom, plotRight, plotBottom, "#333"));
        svg.Add(Svg.Text(Left + plotWidth / 2, height - 14, xTitle, "middle")).Attr("class", "axis-title");
        return (svg, x, y, (Left, plotTop, plotRight, plotBottom));
    }

    private static void DrawYAxis(SvgElement svg, double left, double plotTop, double plotBottom, Func<double, double> y, double plotRight, string title)
    {
        foreach (double t in NiceTicks(0, 100))
        {
            svg.Add(Svg.Line(left, y(t), plotRight, y(t), t == 0 ? "#333" : "#e3e3e3"));
            svg.Add(Svg.Text(left - 8, y(t), Tick(t), "end")).Attr("dominant-baseline", "middle").Attr("class", "tick-y");
        }
        svg.Add(Svg.Line(left, plotTop, left, plotBottom, "#333"));
        double middle = (plotTop + plotBottom) / 2;
        svg.Add(Svg.Text(20, middle, title, "middle")).Attr("transform", $"rotate(-90 20 {Svg.Num(middle)})").Attr("class", "axis-title");
    }

    private enum Swatch { Box, Front, Dominated, Step, Curve, Square }

    private sealed record LegendItem(string Text, Swatch Swatch, string Colour, double X, int Row);

    private sealed record Legend(IReadOnlyList<LegendItem> Items, int Rows);

    // Legend entries left to right from the plot's left edge, wrapping before the right edge.
    private static Legend LegendLayout(IReadOnlyList<(string Text, Swatch Swatch, string? Colour)> entries, double left, double width)
    {
        var items = new List<LegendItem>();
        double x = left;
        int row = 0;
        for (int i = 0; i < entries.Count; i++)
        {
            double w = 30 + Svg.TextWidth(entries[i].Text, FontSize) + 18;
            if (x + w > width - Right && x > left)
            {
                row++;
                x = left;
            }
            items.Add(new LegendItem(entries[i].Text, entries[i].Swatch, entries[i].Colour ?? Palette[i % Palette.Count], x, row));
            x += w;
        }
        return new Legend(items, row + 1);
    }

    private static void DrawLegend(SvgElement svg, Legend legend, double top)
    {
        var group = svg.Add("g").Attr("class", "legend");
        foreach (var item in legend.Items)
        {
            double cy = top + item.Row * LegendRow + 7;
            switch (item.Swatch)
            {
                case Swatch.Box:
                    group.Add("rect").Attr("x", item.X).Attr("y", cy - 6).Attr("width", 22).Attr("height", 12).Attr("fill", item.Colour);
                    break;
                case Swatch.Front:
                    group.Add("circle").Attr("cx", item.X + 11).Attr("cy", cy).Attr("r", 6).Attr("fill", "#666").Attr("stroke", "#000");
                    break;
                case Swatch.Dominated:
                    group.Add("circle").Attr("cx", item.X + 11).Attr("cy", cy).Attr("r", 5).Attr("fill", "#fff").Attr("stroke", "#666").Attr("stroke-width", 2);
                    break;
                case Swatch.Step:
                    group.Add(Svg.Line(item.X, cy, item.X + 22, cy, "#333", 2)).Attr("stroke-dasharray", "6 4");
                    break;
                case Swatch.Curve:
                    group.Add(Svg.Line(item.X, cy, item.X + 22, cy, item.Colour, 2));
                    group.Add("circle").Attr("cx", item.X + 11).Attr("cy", cy).Attr("r", 4).Attr("fill", item.Colour).Attr("stroke", "#000");
                    break;
                case Swatch.Square:
                    group.Add("rect").Attr("x", item.X + 6).Attr("y", cy - 5).Attr("width", 10).Attr("height", 10).Attr("fill", item.Colour).Attr("stroke", "#000");
                    break;
            }
            group.Add(Svg.Text(item.X + 30, cy, item.Text)).Attr("dominant-baseline", "middle").Attr("class", "legend-label");
        }
    }

    // Group labels word-wrapped to the group's width (at most three lines); rotated when a word alone is too wide.
    private static (List<List<string>> Lines, bool Rotate) WrapGroupLabels(IReadOnlyList<string> labels, double maxWidth)
    {
        var all = new List<List<string>>();
        bool rotate = false;
        foreach (string label in labels)
        {
            var lines = new List<string>();
            string current = "";
            foreach (string word in label.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            {
                string candidate = current.Length == 0 ? word : current + " " + word;
                if (current.Length > 0 && Svg.TextWidth(candidate, FontSize) > maxWidth)
                {
                    lines.Add(current);
                    current = word;
                }
                else current = candidate;
            }
            lines.Add(current);
            if (lines.Count > 3 || lines.Any(l => Svg.TextWidth(l, FontSize) > maxWidth)) rotate = true;
            all.Add(lines);
        }
        return (all, rotate);
    }

    // Each label goes to the first of eight positions around its point that stays inside the plot and overlaps
    // neither an earlier label, a point nor the front's line; failing that, to the position with the least overlap.
    private static void PlacePointLabels(SvgElement svg, IReadOnlyList<ScatterPoint> points, double[] px, double[] py,
        List<(double X0, double Y0, double X1, double Y1)> obstacles, (double Left, double Top, double Right, double Bottom) plot, IReadOnlyList<string>? colours = null)
    {
        const double lineHeight = 14;
        var placed = new List<(double X0, double Y0, double X1, double Y1)>();
        // Points and the front's step line are obstacles too.
        var pointBoxes = Enumerable.Range(0, points.Count).Select(i => (px[i] - 7, py[i] - 7, px[i] + 7, py[i] + 7)).Concat(obstacles).ToList();
        for (int i = 0; i < points.Count; i++)
        {
            if (points[i].Label.Length == 0) continue; // a point whose label another one carries
            double w = Svg.TextWidth(points[i].Label, SmallFont);
            // (x of the text anchor, baseline y, anchor); the box follows from the anchor.
            // Beside the point first; then farther out, joined to it by a leader line (class leader).
            var candidates = new List<(double X, double Y, string Anchor, bool Leader)>
            {
                (px[i] + 10, py[i] + 4, "start", false), (px[i] - 10, py[i] + 4, "end", false),
                (px[i], py[i] - 11, "middle", false), (px[i], py[i] + 19, "middle", false),
                (px[i] + 7, py[i] - 8, "start", false), (px[i] - 7, py[i] - 8, "end", false),
                (px[i] + 7, py[i] + 17, "start", false), (px[i] - 7, py[i] + 17, "end", false),
            };
            foreach (double r in (double[])[28, 44, 62, 84])
                for (int k = 0; k < 12; k++)
                {
                    double angle = k * Math.PI / 6, dx = r * Math.Cos(angle), dy = r * Math.Sin(angle);
                    candidates.Add((px[i] + dx, py[i] + dy + 4, Math.Abs(dx) < 1 ? "middle" : dx > 0 ? "start" : "end", true));
                }
            var best = candidates[0];
            double bestCost = double.MaxValue;
            foreach (var c in candidates)
            {
                double x0 = c.Anchor switch { "start" => c.X, "end" => c.X - w, _ => c.X - w / 2 };
                var box = (x0, c.Y - lineHeight + 3, x0 + w, c.Y + 3);
                double outside = box.Item1 < plot.Left + 2 || box.Item3 > plot.Right - 2 || box.Item2 < plot.Top + 2 || box.Item4 > plot.Bottom - 2 ? 1e6 : 0;
                double cost = outside + placed.Sum(b => Overlap(box, b)) + pointBoxes.Sum(b => Overlap(box, b));
                if (cost < bestCost)
                {
                    bestCost = cost;
                    best = c;
                }
                if (cost == 0) break;
            }
            double bx0 = best.Anchor switch { "start" => best.X, "end" => best.X - w, _ => best.X - w / 2 };
            var placedBox = (bx0, best.Y - lineHeight + 3, bx0 + w, best.Y + 3);
            placed.Add(placedBox);
            if (best.Leader)
            {
                // From the point's edge to the nearest point of the label's box.
                double tx = Math.Clamp(px[i], placedBox.Item1, placedBox.Item3), ty = Math.Clamp(py[i], placedBox.Item2, placedBox.Item4);
                double d = Math.Max(1e-9, Math.Sqrt((tx - px[i]) * (tx - px[i]) + (ty - py[i]) * (ty - py[i])));
                svg.Add(Svg.Line(px[i] + (tx - px[i]) * 6 / d, py[i] + (ty - py[i]) * 6 / d, tx, ty, "#888", 0.8)).Attr("class", "leader");
            }
            var text = svg.Add(Svg.Text(best.X, best.Y, points[i].Label, best.Anchor)).Attr("font-size", SmallFont).Attr("class", "point-label");
            if (colours is not null) text.Attr("fill", colours[i]);
        }
    }

    private static double Overlap((double X0, double Y0, double X1, double Y1) a, (double X0, double Y0, double X1, double Y1) b) =>
        Math.Max(0, Math.Min(a.X1, b.X1) - Math.Max(a.X0, b.X0)) * Math.Max(0, Math.Min(a.Y1, b.Y1) - Math.Max(a.Y0, b.Y0));

    private static string Tick(double t) => t.ToString("0.###", CultureInfo.InvariantCulture);

    /// <summary>A percentage with one decimal, e.g. "12.5%".</summary>
    internal static string Percent(double percent) => percent.ToString("0.0", CultureInfo.InvariantCulture) + "%";
}
