using System.Globalization;

namespace Irr.Text.Jinja;

/// <summary>
/// Parses template pieces into statements, following jinja2's grammar and operator precedence
/// (<c>if</c>-expressions, <c>or</c>, <c>and</c>, <c>not</c>, comparisons, <c>+ -</c>, <c>~</c>,
/// <c>* / // %</c>, <c>**</c>, unary, then postfix access, filters and tests). Tags, filters and tests
/// outside the supported subset are rejected here, naming the construct and its line.
/// </summary>
internal sealed class Parser
{
    private static readonly HashSet<string> UnsupportedTags =
        ["include", "import", "from", "extends", "block", "call", "filter", "with", "autoescape", "do", "trans", "pluralize"];

    private readonly List<TemplatePiece> pieces;
    private readonly string name;
    private readonly Stack<(string Opener, string EndTag)> openBlocks = new();
    private int index;
    private HashSet<string> referencedNames = new(StringComparer.Ordinal);

    private Parser(List<TemplatePiece> pieces, string name)
    {
        this.pieces = pieces;
        this.name = name;
    }

    public static List<Stmt> Parse(string source, string name)
    {
        var parser = new Parser(Lexer.Tokenize(source, name), name);
        var (body, end) = parser.ParseBody(0, []);
        if (end is not null) throw parser.Error(end.Value.Line, $"unexpected '{end.Value.Value}'");
        return body;
    }

    private IrrException Error(int line, string message) => new($"{name} line {line}: {Budget.Escape(message)}");

    /// <summary>
    /// One level deeper in the template's nesting (a block, a parenthesis, a nested expression), counted against
    /// <see cref="Budget.DepthVariable"/>: the parser recurses per level, and the counter, not the stack, ends it.
    /// </summary>
    private void Enter(int line)
    {
        try
        {
            Budget.Current.Enter();
        }
        catch (LimitError e)
        {
            throw Limits.Exceeded($"{name} line {line}", e.What, e.Variable, e.Limit);
        }
    }

    private NameExpr Referenced(NameExpr expr)
    {
        referencedNames.Add(expr.Name);
        return expr;
    }

    /// <summary>Statements up to one of <paramref name="endTags"/> (returned with its stream positioned after the tag name).</summary>
    private (List<Stmt> Body, Token? End) ParseBody(int loopDepth, string[] endTags)
    {
        var body = new List<Stmt>();
        while (index < pieces.Count)
        {
            var piece = pieces[index];
            switch (piece)
            {
                case TextPiece text:
                    index++;
                    body.Add(new TextStmt(text.Text));
                    break;
                case OutputPiece output:
                {
                    index++;
                    var ts = new TokenStream(output.Tokens, output.Line, this);
                    if (ts.AtEnd) throw Error(output.Line, "empty expression in '{{ }}'");
                    body.Add(new OutputStmt(ts.ParseTuple(), output.Line));
                    ts.ExpectEnd();
                    break;
                }
                case StatementPiece statement:
                {
                    var ts = new TokenStream(statement.Tokens, statement.Line, this);
                    if (ts.AtEnd) throw Error(statement.Line, "empty tag '{% %}'");
                    var tag = ts.Peek();
                    if (tag.Kind != TokenKind.Name) throw Error(statement.Line, $"expected a tag name, found {tag}");
                    if (endTags.Contains(tag.Value))
                    {
                        return (body, tag);
                    }
                    index++;
                    ts.Next();
                    body.Add(ParseStatement(tag, ts, loopDepth));
                    break;
                }
            }
        }
        return (body, null);
    }

    /// <summary>The end tag <see cref="ParseBody"/> stopped at, consumed, positioned after its name.</summary>
    private TokenStream CurrentEndTag()
    {
        var piece = (StatementPiece)pieces[index++];
        var ts = new TokenStream(piece.Tokens, piece.Line, this);
        ts.Next();
        return ts;
    }

    private List<Stmt> ExpectBlockEnd(int loopDepth, string opener, int line, string endTag, out Token end, params string[] alsoEnd)
    {
        openBlocks.Push((opener, endTag));
        Enter(line);
        var (body, found) = ParseBody(loopDepth, [endTag, .. alsoEnd]);
        Budget.Current.Leave();
        openBlocks.Pop();
        if (found is null) throw Error(line, $"'{opener}' is not closed ('{{% {endTag} %}}' missing)");
        end = found.Value;
        return body;
    }

    private Stmt ParseStatement(Token tag, TokenStream ts, int loopDepth)
    {
        int line = tag.Line;
        switch (tag.Value)
        {
            case "if":
            {
                var branches = new List<(Expr, List<Stmt>)>();
                var test = ts.ParseExpression();
                ts.ExpectEnd();
                while (true)
                {
                    var body = ExpectBlockEnd(loopDepth, "if", line, "endif", out var end, "elif", "else");
                    branches.Add((test, body));
                    var endTs = CurrentEndTag();
                    if (end.Value == "elif")
                    {
                        test = endTs.ParseExpression();
                        endTs.ExpectEnd();
                        continue;
                    }
                    endTs.ExpectEnd();
                    if (end.Value == "endif") return new IfStmt(branches, null, line);
                    var otherwise = ExpectBlockEnd(loopDepth, "else", line, "endif", out var end2);
                    CurrentEndTag().ExpectEnd();
                    return new IfStmt(branches, otherwise, line);
                }
            }
            case "for":
            {
                var targets = ParseTargets(ts);
                ts.ExpectName("in");
                var iterable = ts.ParseTuple(withCondExpr: false);
                Expr? filter = null;
                if (ts.SkipName("if")) filter = ts.ParseExpression();
                if (ts.Peek().IsName("recursive")) throw Error(line, "unsupported loop modifier 'recursive'");
                ts.ExpectEnd();
                var body = ExpectBlockEnd(loopDepth + 1, "for", line, "endfor", out var end, "else");
                CurrentEndTag().ExpectEnd();
                List<Stmt>? otherwise = null;
                if (end.Value == "else")
                {
                    otherwise = ExpectBlockEnd(loopDepth, "else", line, "endfor", out var end2);
                    CurrentEndTag().ExpectEnd();
                }
                return new ForStmt(targets, iterable, filter, body, otherwise, line);
            }
            case "set":
            {
                var first = ts.ExpectNameToken();
                if (ts.Peek().Is("."))
                {
                    ts.Next();
                    string attr = ts.ExpectNameToken().Value;
                    ts.Expect("=");
                    var value = ts.ParseTuple();
                    ts.ExpectEnd();
                    return new SetAttrStmt(first.Value, attr, value, line);
                }
                var targets = new List<string> { first.Value };
                while (ts.Peek().Is(","))
                {
                    ts.Next();
                    targets.Add(ts.ExpectNameToken().Value);
                }
                if (ts.AtEnd && targets.Count == 1)
                {
                    var body = ExpectBlockEnd(loopDepth, "set", line, "endset", out var end);
                    CurrentEndTag().ExpectEnd();
                    return new SetBlockStmt(first.Value, body, line);
                }
                ts.Expect("=");
                var v = ts.ParseTuple();
                ts.ExpectEnd();
                return new SetStmt(targets, v, line);
            }
            case "macro":
            {
                string macroName = ts.ExpectNameToken().Value;
                ts.Expect("(");
                var parameters = new List<(string, Expr?)>();
                while (!ts.Peek().Is(")"))
                {
                    if (parameters.Count > 0) ts.Expect(",");
                    string p = ts.ExpectNameToken().Value;
                    Expr? dflt = null;
                    if (ts.Peek().Is("="))
                    {
                        ts.Next();
                        dflt = ts.ParseExpression();
                    }
                    parameters.Add((p, dflt));
                }
                ts.Expect(")");
                ts.ExpectEnd();
                var outerNames = referencedNames;
                referencedNames = new(StringComparer.Ordinal);
                var body = ExpectBlockEnd(0, "macro", line, "endmacro", out var end);
                CurrentEndTag().ExpectEnd();
                // jinja2 gives a macro that reads varargs/kwargs/caller extra arguments; that is not supported.
                foreach (var special in (string[])["varargs", "kwargs", "caller"])
                    if (referencedNames.Contains(special) && !parameters.Any(p => p.Item1 == special))
                        throw Error(line, $"unsupported: macro '{macroName}' reads '{special}' (macros taking extra arguments or a caller are not supported)");
                outerNames.UnionWith(referencedNames);
                referencedNames = outerNames;
                return new MacroStmt(macroName, parameters, body, line);
            }
            case "break" or "continue":
                if (loopDepth == 0) throw Error(line, $"'{tag.Value}' outside of a loop");
                ts.ExpectEnd();
                return new LoopControlStmt(tag.Value == "break" ? Flow.Break : Flow.Continue, line);
            case "generation":
            {
                ts.ExpectEnd();
                var body = ExpectBlockEnd(loopDepth, "generation", line, "endgeneration", out var end);
                CurrentEndTag().ExpectEnd();
                return new BlockStmt(body, line);
            }
            case var t when t.StartsWith("end", StringComparison.Ordinal) || t is "elif" or "else":
                throw Error(line, openBlocks.Count == 0 ? $"unexpected '{t}'"
                    : $"unexpected '{t}' inside '{openBlocks.Peek().Opener}' (expected '{{% {openBlocks.Peek().EndTag} %}}')");
            default:
                throw Error(line, UnsupportedTags.Contains(tag.Value) ? $"unsupported tag '{tag.Value}'" : $"unknown tag '{tag.Value}'");
        }
    }

    private static List<string> ParseTargets(TokenStream ts)
    {
        bool paren = ts.Peek().Is("(");
        if (paren) ts.Next();
        var targets = new List<string> { ts.ExpectNameToken().Value };
        while (ts.Peek().Is(","))
        {
            ts.Next();
            if (paren && ts.Peek().Is(")")) break;
            targets.Add(ts.ExpectNameToken().Value);
        }
        if (paren) ts.Expect(")");
        return targets;
    }

    /// <summary>The tokens of one tag, and the expression grammar over them.</summary>
    private sealed class TokenStream(List<Token> tokens, int line, Parser parser)
    {
        private int pos;

        public bool AtEnd => pos >= tokens.Count;

        public Token Peek(int ahead = 0) => pos + ahead < tokens.Count ? tokens[pos + ahead] : new Token(TokenKind.End, "", Last);

        private int Last => tokens.Count > 0 ? tokens[^1].Line : line;

        public Token Next()
        {
            var t = Peek();
            pos++;
            return t;
        }

        private IrrException Error(Token at, string message) => parser.Error(at.Kind == TokenKind.End ? Last : at.Line, message);

        public void ExpectEnd()
        {
            if (!AtEnd) throw Error(Peek(), $"unexpected {Peek()}");
        }

        public void Expect(string op)
        {
            var t = Next();
            if (!t.Is(op)) throw Error(t, $"expected '{op}', found {t}");
        }

        public void ExpectName(string name)
        {
            var t = Next();
            if (!t.IsName(name)) throw Error(t, $"expected '{name}', found {t}");
        }

        public Token ExpectNameToken()
        {
            var t = Next();
            return t.Kind == TokenKind.Name ? t : throw Error(t, $"expected a name, found {t}");
        }

        public bool SkipName(string name)
        {
            if (!Peek().IsName(name)) return false;
            pos++;
            return true;
        }

        /// <summary>An expression, or several separated by commas (an implicit tuple).</summary>
        public Expr ParseTuple(bool withCondExpr = true)
        {
            int l = Peek().Line;
            var first = withCondExpr ? ParseExpression() : ParseOr();
            if (!Peek().Is(",")) return first;
            var items = new List<Expr> { first };
            while (Peek().Is(","))
            {
                Next();
                if (AtEnd || Peek().Is(")") || Peek().IsName("if")) break;
                items.Add(withCondExpr ? ParseExpression() : ParseOr());
            }
            return new TupleExpr(items, l);
        }

        public Expr ParseExpression()
        {
            parser.Enter(Peek().Line);
            try
            {
                return ParseConditional();
            }
            finally
            {
                Budget.Current.Leave();
            }
        }

        private Expr ParseConditional()
        {
            var expr = ParseOr();
            while (Peek().IsName("if"))
            {
                int l = Next().Line;
                var test = ParseOr();
                Expr? otherwise = SkipName("else") ? ParseExpression() : null;
                expr = new CondExpr(test, expr, otherwise, l);
            }
            return expr;
        }

        private Expr ParseOr() => ParseLeftAssociative(ParseAnd, "or");

        private Expr ParseAnd() => ParseLeftAssociative(ParseNot, "and");

        /// <summary><c>next (op next)*</c>, grouped to the left; the operators are names (or, and) or symbols.</summary>
        private Expr ParseLeftAssociative(Func<Expr> next, params string[] ops)
        {
            var left = next();
            while (true)
            {
                var t = Peek();
                if (!((t.Kind == TokenKind.Operator || t.Kind == TokenKind.Name) && ops.Contains(t.Value))) return left;
                Next();
                left = new BinaryExpr(t.Value, left, next(), t.Line);
            }
        }

        private Expr ParseNot()
        {
            if (!Peek().IsName("not")) return ParseCompare();
            // not not not …: a run of prefixes, read in a loop; the nodes nest, and evaluation counts their depth.
            var lines = new Stack<int>();
            while (Peek().IsName("not")) lines.Push(Next().Line);
            var node = ParseCompare();
            while (lines.Count > 0) node = new UnaryExpr("not", node, lines.Pop());
            return node;
        }

        private static readonly string[] CompareOps = ["==", "!=", "<", "<=", ">", ">="];

        private Expr ParseCompare()
        {
            int l = Peek().Line;
            var first = ParseMath1();
            var rest = new List<(string, Expr)>();
            while (true)
            {
                var t = Peek();
                if (t.Kind == TokenKind.Operator && CompareOps.Contains(t.Value))
                {
                    Next();
                    rest.Add((t.Value, ParseMath1()));
                }
                else if (t.IsName("in"))
                {
                    Next();
                    rest.Add(("in", ParseMath1()));
                }
                else if (t.IsName("not") && Peek(1).IsName("in"))
                {
                    Next();
                    Next();
                    rest.Add(("not in", ParseMath1()));
                }
                else break;
            }
            return rest.Count == 0 ? first : new CompareExpr(first, rest, l);
        }

        private Expr ParseMath1() => ParseLeftAssociative(ParseConcat, "+", "-");

        private Expr ParseConcat() => ParseLeftAssociative(ParseMath2, "~");

        private Expr ParseMath2() => ParseLeftAssociative(ParsePow, "*", "/", "//", "%");

        private Expr ParsePow() => ParseLeftAssociative(() => ParseUnary(withFilter: true), "**");

        private Expr ParseUnary(bool withFilter)
        {
            // - + - …: a run of signs, read in a loop (jinja2 binds each to the unary expression after it, without filters).
            var signs = new Stack<Token>();
            while (Peek().Is("-") || Peek().Is("+")) signs.Push(Next());
            var node = ParsePostfix(ParsePrimary());
            while (signs.Count > 0)
            {
                var t = signs.Pop();
                node = ParsePostfix(new UnaryExpr(t.Value, node, t.Line));
            }
            return withFilter ? ParseFilterExpr(node) : node;
        }

        private Expr ParsePrimary()
        {
            var t = Next();
            switch (t.Kind)
            {
                case TokenKind.Name:
                    return t.Value switch
                    {
                        "true" or "True" => new Literal(true, t.Line),
                        "false" or "False" => new Literal(false, t.Line),
                        "none" or "None" => new Literal(null, t.Line),
                        _ => parser.Referenced(new NameExpr(t.Value, t.Line)),
                    };
                case TokenKind.String:
                {
                    var s = new System.Text.StringBuilder(t.Value);
                    while (Peek().Kind == TokenKind.String) s.Append(Next().Value); // adjacent literals concatenate
                    return new Literal(s.ToString(), t.Line);
                }
                case TokenKind.Integer:
                    return long.TryParse(t.Value, NumberStyles.None, CultureInfo.InvariantCulture, out long l)
                        ? new Literal(l, t.Line) : throw Error(t, $"integer {t.Value} is too large");
                case TokenKind.Float:
                    return new Literal(double.Parse(t.Value, CultureInfo.InvariantCulture), t.Line);
            }
            if (t.Is("("))
            {
                if (Peek().Is(")"))
                {
                    Next();
                    return new TupleExpr([], t.Line);
                }
                var inner = ParseExpression();
                if (Peek().Is(","))
                {
                    var items = new List<Expr> { inner };
                    while (Peek().Is(","))
                    {
                        Next();
                        if (Peek().Is(")")) break;
                        items.Add(ParseExpression());
                    }
                    inner = new TupleExpr(items, t.Line);
                }
                Expect(")");
                return inner;
            }
            if (t.Is("["))
            {
                var items = new List<Expr>();
                while (!Peek().Is("]"))
                {
                    if (items.Count > 0)
                    {
                        Expect(",");
                        if (Peek().Is("]")) break;
                    }
                    items.Add(ParseExpression());
                }
                Expect("]");
                return new ListExpr(items, t.Line);
            }
            if (t.Is("{"))
            {
                var pairs = new List<(Expr, Expr)>();
                while (!Peek().Is("}"))
                {
                    if (pairs.Count > 0)
                    {
                        Expect(",");
                        if (Peek().Is("}")) break;
                    }
                    var key = ParseExpression();
                    Expect(":");
                    pairs.Add((key, ParseExpression()));
                }
                Expect("}");
                return new DictExpr(pairs, t.Line);
            }
            throw Error(t, t.Kind == TokenKind.End ? "unexpected end of expression" : $"unexpected {t}");
        }

        private Expr ParsePostfix(Expr node)
        {
            while (true)
            {
                var t = Peek();
                if (t.Is("."))
                {
                    Next();
                    var attr = Next();
                    if (attr.Kind == TokenKind.Name) node = new GetAttr(node, attr.Value, attr.Line);
                    else if (attr.Kind == TokenKind.Integer) node = new GetItem(node, new Literal(long.Parse(attr.Value, CultureInfo.InvariantCulture), attr.Line), attr.Line);
                    else throw Error(attr, $"expected an attribute name, found {attr}");
                }
                else if (t.Is("["))
                {
                    Next();
                    node = ParseSubscript(node, t.Line);
                }
                else if (t.Is("("))
                {
                    Next();
                    var (args, kwargs) = ParseCallArgs();
                    node = new CallExpr(node, args, kwargs, t.Line);
                }
                else return node;
            }
        }

        private Expr ParseSubscript(Expr node, int l)
        {
            Expr? start = null, stop = null, step = null;
            if (!Peek().Is(":")) start = ParseExpression();
            if (!Peek().Is(":"))
            {
                Expect("]");
                return new GetItem(node, start!, l);
            }
            Next();
            if (!Peek().Is(":") && !Peek().Is("]")) stop = ParseExpression();
            if (Peek().Is(":"))
            {
                Next();
                if (!Peek().Is("]")) step = ParseExpression();
            }
            Expect("]");
            return new SliceExpr(node, start, stop, step, l);
        }

        /// <summary>Arguments after '(' up to and including ')'.</summary>
        private (List<Expr>, List<(string, Expr)>) ParseCallArgs()
        {
            var args = new List<Expr>();
            var kwargs = new List<(string, Expr)>();
            while (!Peek().Is(")"))
            {
                if (args.Count + kwargs.Count > 0)
                {
                    Expect(",");
                    if (Peek().Is(")")) break;
                }
                if (Peek().Is("*") || Peek().Is("**")) throw Error(Peek(), "unsupported '*args'/'**kwargs' in a call");
                if (Peek().Kind == TokenKind.Name && Peek(1).Is("="))
                {
                    string key = Next().Value;
                    Next();
                    kwargs.Add((key, ParseExpression()));
                }
                else
                {
                    if (kwargs.Count > 0) throw Error(Peek(), "positional argument after keyword argument");
                    args.Add(ParseExpression());
                }
            }
            Expect(")");
            return (args, kwargs);
        }

        private Expr ParseFilterExpr(Expr node)
        {
            while (true)
            {
                var t = Peek();
                if (t.Is("|"))
                {
                    Next();
                    var nameToken = ExpectNameToken();
                    string filter = nameToken.Value;
                    if (!Builtins.HasFilter(filter)) throw Error(nameToken, $"unsupported filter '{filter}'");
                    var args = new List<Expr>();
                    var kwargs = new List<(string, Expr)>();
                    if (Peek().Is("("))
                    {
                        Next();
                        (args, kwargs) = ParseCallArgs();
                    }
                    node = new FilterExpr(node, filter, args, kwargs, nameToken.Line);
                }
                else if (t.IsName("is"))
                {
                    Next();
                    bool negated = SkipName("not");
                    var nameToken = Next();
                    string test = nameToken.Kind switch
                    {
                        TokenKind.Name => nameToken.Value,
                        TokenKind.Operator when nameToken.Value is "==" or "!=" or "<" or "<=" or ">" or ">=" => nameToken.Value,
                        _ => throw Error(nameToken, $"expected a test name after 'is', found {nameToken}"),
                    };
                    if (!Builtins.HasTest(test)) throw Error(nameToken, $"unsupported test '{test}'");
                    var args = new List<Expr>();
                    var n = Peek();
                    if (n.Is("("))
                    {
                        Next();
                        var (a, kw) = ParseCallArgs();
                        if (kw.Count > 0) throw Error(n, "tests take no keyword arguments");
                        args = a;
                    }
                    else if ((n.Kind is TokenKind.Name or TokenKind.String or TokenKind.Integer or TokenKind.Float || n.Is("[") || n.Is("{"))
                             && !n.IsName("else") && !n.IsName("or") && !n.IsName("and") && !n.IsName("is") && !n.IsName("if"))
                        args.Add(ParsePostfix(ParsePrimary()));
                    Expr testExpr = new TestExpr(node, test, args, nameToken.Line);
                    node = negated ? new UnaryExpr("not", testExpr, nameToken.Line) : testExpr;
                }
                else if (t.Is("("))
                {
                    Next();
                    var (args, kwargs) = ParseCallArgs();
                    node = new CallExpr(node, args, kwargs, t.Line);
                }
                else return node;
            }
        }
    }
}
