# sendgrid-integrations-validate answers as the gateway does: every case of
# the body table (t/lib/SGBodyCases.pm) is sent through nginx and given to
# the command, on its standard input and as a file; its message (one line,
# as the answer carries it), its --json output (the answer itself) and its
# exit code must match what the gateway answered.  Then the command's
# usage: options, files, errors.

use strict;
use warnings;

use POSIX ();
use Test::More;
use SGTest qw(body_error);
use SGBodyCases;

my $CLI = "$SGTest::TOP/build/sendgrid-integrations-validate";
-x $CLI or BAIL_OUT("$CLI is missing (make validator)");

my $t = SGBodyCases::gateway();
my $DIR = $t->dir . '/cli';


# Runs the command with args, input on its standard input (undef: none);
# returns { rc, out, err }.
sub cli {
    my ($input, @args) = @_;
    $t->write_file('cli/in', $input // '');

    my $pid = fork // die "fork: $!";

    if ($pid == 0) {
        # nothing of the test's own (its END, its nginx) runs here
        open(STDIN, '<', "$DIR/in") && open(STDOUT, '>', "$DIR/out")
            && open(STDERR, '>', "$DIR/err") && exec $CLI, @args;
        POSIX::_exit(127);
    }

    waitpid $pid, 0;

    return +{ rc => ($? == -1 || $? & 127) ? "not run or killed ($?)"
                                            : $? >> 8,
              out => read_file("$DIR/out"), err => read_file("$DIR/err") };
}

sub read_file {
    my $text = SGTest::slurp($_[0]);
    return $text // '';
}


# --- the table: the command against the gateway -----------------------------

my @cases = SGBodyCases::cases();

# The command on every body, by one shell: on its standard input with the
# message on one line, and as a file with --json.
{
    my $script = '';

    for my $i (0 .. $#cases) {
        my $c = $cases[$i];
        my $op = "--operation $c->{op}" . ($c->{strict} ? ' --strict' : '');
        my $path = $t->write_file("cli/$i.body", $c->{body} // '');

        $script .= "'$CLI' $op - <'$path' >'$DIR/$i.out' 2>'$DIR/$i.err';"
                   . " echo \$? >'$DIR/$i.rc'\n"
                   . "'$CLI' $op --json '$path' >'$DIR/$i.json'"
                   . " 2>'$DIR/$i.json-err'; echo \$? >'$DIR/$i.json-rc'\n";
    }

    system('/bin/sh', $t->write_file('cli/all.sh', $script)) == 0
        or die "cli/all.sh: $?";
}

my $refused = 0;

for my $i (0 .. $#cases) {
    my $c = $cases[$i];
    my $name = $c->{name};

    my $r = SGBodyCases::request($t, $c);

    my @line = map { read_file("$DIR/$i.$_") } qw(rc out err);
    my @json = map { read_file("$DIR/$i.$_") } qw(json-rc json json-err);

    if (!defined $c->{message}) {
        is($r->{status}, 200, "$name: the gateway forwards it");
        is_deeply(\@line, [ "0\n", '', '' ], "$name: valid, nothing printed");
        is_deeply(\@json, [ "0\n", '', '' ],
                  "$name: --json, valid, nothing printed");
        next;
    }

    $refused++;

    is($r->{status}, 400, "$name: the gateway refuses it");
    is($r->{body}, body_error($c->{message}),
       "$name: with the table's message");

    my ($message) = $r->{body} =~ /^\{"errors":\[\{"message":"(.*)",
                                     "field":"request"\}\]\}\z/sx;

    is_deeply(\@line, [ "1\n", ($message // 'no message') . "\n", '' ],
              "$name: the gateway's message, exit 1");
    is_deeply(\@json, [ "1\n", "$r->{body}\n", '' ],
              "$name: --json, the gateway's answer, exit 1");
}

cmp_ok(scalar @cases, '>=', 300, 'at least 300 cases of the table');
cmp_ok($refused, '>=', 200, "$refused of them refused");


# --- usage -----------------------------------------------------------------

my $valid = '{"label":"x"}';
my $r;

$r = cli($valid, '--operation=update');
is_deeply([ $r->{rc}, $r->{out}, $r->{err} ], [ 0, '', '' ],
          '--operation=update, the standard input by default');

$r = cli('{"label":1}', '--operation', 'update', '--', '-');
is_deeply([ $r->{rc}, $r->{out} ], [ 1, "label must be a string\n" ],
          'after --, "-" is still the standard input');

$t->write_file('cli/-odd.json', '{"label":1}');
$r = cli(undef, '--operation', 'update', '--', "$DIR/-odd.json");
is_deeply([ $r->{rc}, $r->{out} ], [ 1, "label must be a string\n" ],
          'after --, a file whose name starts with -');

$r = cli($valid, '--help');
is($r->{rc}, 0, '--help: exit 0');
like($r->{out}, qr/^usage: sendgrid-integrations-validate --operation /,
     '--help: the usage on the standard output');

for my $u ([ 'no --operation', [], qr/--operation is required/ ],
           [ 'another operation', [ '--operation', 'delete' ],
             qr/--operation is create or update/ ],
           [ '--operation without a value', [ '--operation' ],
             qr/--operation needs a value/ ],
           [ 'an unknown option', [ '--operation', 'create', '--lenient' ],
             qr/unknown option --lenient/ ],
           [ 'two bodies', [ '--operation', 'create', 'a.json', 'b.json' ],
             qr/one body at a time/ ],
           [ 'a file that is not there',
             [ '--operation', 'create', "$DIR/none.json" ],
             qr{\Q$DIR\E/none\.json: No such file or directory} ],
           [ 'a directory', [ '--operation', 'create', $DIR ],
             qr{\Q$DIR\E: Is a directory} ])
{
    my ($what, $args, $says) = @$u;
    $r = cli($valid, @$args);
    is_deeply([ $r->{rc}, $r->{out} ], [ 2, '' ], "$what: exit 2, no output");
    like($r->{err}, $says, "$what: says why");
}

$t->done_testing;
